#!/usr/bin/env python3
"""Draws each dashboard as a PNG from live query results, laid out on Grafana's grid as Grafana would.

Grafana cannot be installed here, so this is a small renderer of the panel types the dashboards use
(time series, stat, state timeline, table) with matplotlib. Its input is what
etcd-monitor/tests/it/stack/dashboards.rs writes when ETCD_MONITOR_DASHBOARD_DUMP is set: each dashboard's JSON with
every query's result from a real Prometheus beside it. scripts/render-dashboards.sh runs both.

    scripts/render-dashboards.py DUMP_DIR OUT_DIR
"""
import json
import math
import os
import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

BG, PANEL, TEXT, GRID = "#111217", "#181b1f", "#ccccdc", "#2c3235"
PALETTE = ["#73bf69", "#f2cc0c", "#5794f2", "#ff9830", "#f2495c", "#b877d9", "#8ab8ff", "#fade2a",
           "#ff780a", "#96d98d", "#ffa6b0", "#ca95e5"]
ROW_PX, COL_PX = 30, 60  # one grid row is 30 px in Grafana; 24 columns over a ~1440 px wide screen


def legend(fmt, metric):
    if not fmt or fmt == "__auto":
        inner = ", ".join(f'{k}="{v}"' for k, v in metric.items() if k != "__name__")
        return metric.get("__name__", "") + ("{" + inner + "}" if inner else "")
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: metric.get(m.group(1), ""), fmt)


def fmt_value(v, unit):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if unit == "bytes":
        for u in ["B", "KiB", "MiB", "GiB", "TiB"]:
            if abs(v) < 1024:
                return f"{v:.3g} {u}"
            v /= 1024
    if unit == "s":
        return f"{v * 1000:.3g} ms" if abs(v) < 1 else f"{v:.3g} s"
    if unit == "percentunit":
        return f"{v * 100:.3g}%"
    if unit in ("reqps",):
        return f"{v:.3g} req/s"
    if unit == "Bps":
        return f"{v:.3g} B/s"
    return f"{v:.4g}"


def mapped(v, panel):
    for m in panel.get("fieldConfig", {}).get("defaults", {}).get("mappings", []):
        opt = m.get("options", {}).get(str(int(v)) if v == int(v) else str(v))
        if opt:
            return opt.get("text"), opt.get("color")
    return None, None


def series(panel):
    out = []
    for t in panel.get("targets") or []:
        for r in t.get("result", []):
            metric = r.get("metric", {})
            if "values" in r:
                pts = [(float(ts), float(v)) for ts, v in r["values"]]
            elif "value" in r:
                pts = [(float(r["value"][0]), float(r["value"][1]))]
            else:  # scalar
                pts = [(float(r[0]), float(r[1]))]
            out.append((legend(t.get("legendFormat"), metric), metric, pts))
    return out


def draw_timeseries(ax, panel, t0, t1):
    unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "none")
    ss = series(panel)
    for i, (name, _, pts) in enumerate(ss[:12]):
        step = min((b[0] - a[0] for a, b in zip(pts, pts[1:])), default=1.0)
        xs, ys = [], []
        for j, (ts, v) in enumerate(pts):
            if j and ts - pts[j - 1][0] > 1.5 * step:  # the series was absent: no line across the gap
                xs.append(float("nan"))
                ys.append(float("nan"))
            xs.append(ts - t0)
            ys.append(v)
        ax.plot(xs, ys, color=PALETTE[i % len(PALETTE)], linewidth=1.2, label=name[:40])
    ax.set_facecolor(PANEL)
    ax.set_xlim(0, t1 - t0)
    ax.tick_params(colors=TEXT, labelsize=6)
    ax.grid(color=GRID, linewidth=0.5)
    for s in ax.spines.values():
        s.set_color(GRID)
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: fmt_value(v, unit)))
    ax.set_xlabel("seconds", color=TEXT, fontsize=6)
    if ss:
        ax.legend(fontsize=5, loc="upper left", facecolor=PANEL, edgecolor=GRID, labelcolor=TEXT, ncol=2)


def draw_stat(ax, panel):
    unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "none")
    ss = series(panel)
    ax.set_facecolor(PANEL)
    ax.set_xticks([])
    ax.set_yticks([])
    if not ss:
        ax.text(0.5, 0.5, "No data", color=TEXT, ha="center", va="center", fontsize=12)
        return
    texts, color = [], "#73bf69"
    for name, _, pts in ss[:3]:
        v = pts[-1][1]
        text, c = mapped(v, panel)
        if c:
            color = {"green": "#73bf69", "red": "#f2495c"}.get(c, c)
        steps = panel.get("fieldConfig", {}).get("defaults", {}).get("thresholds", {}).get("steps", [])
        if not c and len(steps) > 1:
            for st in steps:
                if st["value"] is None or v >= st["value"]:
                    color = {"green": "#73bf69", "red": "#f2495c", "orange": "#ff9830"}.get(st["color"], st["color"])
        texts.append((text or fmt_value(v, unit)) + (f"  {name}" if len(ss) > 1 else ""))
    ax.add_patch(Rectangle((0, 0), 1, 1, transform=ax.transAxes, color=color, alpha=0.85))
    ax.text(0.5, 0.45, "\n".join(texts), color="white", ha="center", va="center",
            fontsize=14 if len(texts) == 1 else 9, weight="bold")


def draw_state_timeline(ax, panel, t0, t1):
    ss = series(panel)
    ax.set_facecolor(PANEL)
    ax.set_xlim(0, t1 - t0)
    ax.tick_params(colors=TEXT, labelsize=6)
    names = []
    for i, (name, _, pts) in enumerate(ss[:10]):
        names.append(name[:24])
        step = min((b[0] - a[0] for a, b in zip(pts, pts[1:])), default=1.0)
        for j, (ts, v) in enumerate(pts):
            nxt = pts[j + 1][0] if j + 1 < len(pts) else ts + step
            end = nxt if nxt - ts <= 1.5 * step else ts + step  # a gap: the series was absent
            _, c = mapped(v, panel)
            color = {"green": "#73bf69", "red": "#f2495c"}.get(c, "#5794f2")
            ax.add_patch(Rectangle((ts - t0, i + 0.1), end - ts, 0.8, color=color))
    ax.set_ylim(0, max(len(names), 1))
    ax.set_yticks([i + 0.5 for i in range(len(names))])
    ax.set_yticklabels(names, color=TEXT, fontsize=6)
    ax.set_xlabel("seconds", color=TEXT, fontsize=6)


def draw_table(ax, panel):
    ax.set_facecolor(PANEL)
    ax.set_xticks([])
    ax.set_yticks([])
    hidden = {"__name__", "job", "instance", "alertstate"}
    rows = []
    for t in panel.get("targets") or []:
        for r in t.get("result", []):
            m = r.get("metric", {})
            rows.append(", ".join(f"{k}={v}" for k, v in sorted(m.items()) if k not in hidden)
                        + (f"  → {float(r['value'][1]):.3g}" if "value" in r else ""))
    if not rows:
        rows = ["No data"]
    ax.text(0.01, 0.97, "\n".join(rows[:14]), color=TEXT, ha="left", va="top", fontsize=5.5,
            family="monospace", transform=ax.transAxes)


def render(board, out_png):
    panels = board["panels"]
    rows_h = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels)
    width_px, height_px = 24 * COL_PX, rows_h * ROW_PX + 40
    dpi = 100
    fig = plt.figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi, facecolor=BG)
    fig.text(0.01, 1 - 20 / height_px, board["title"], color=TEXT, fontsize=13, weight="bold", va="center")
    times = [p[0] for panel in panels for _, _, pts in series(panel) for p in pts]
    t0, t1 = (min(times), max(times)) if times else (0, 1)
    for p in panels:
        g = p["gridPos"]
        left = g["x"] * COL_PX / width_px
        top = 1 - (40 + g["y"] * ROW_PX) / height_px
        w = g["w"] * COL_PX / width_px
        h = g["h"] * ROW_PX / height_px
        if p["type"] == "row":
            fig.text(left + 0.005, top - h / 2, p["title"], color=TEXT, fontsize=10, weight="bold", va="center")
            continue
        kind = p["type"]
        # Room on the left for the value axis labels.
        pad = 0.004 if kind in ("stat", "table") else 55 / width_px
        ax = fig.add_axes([left + pad, top - h + 0.012, w - pad - 0.004, h - 0.03 - 14 / height_px])
        fig.text(left + 0.006, top - 12 / height_px, p["title"], color=TEXT, fontsize=7.5, weight="bold")
        if kind == "timeseries":
            draw_timeseries(ax, p, t0, t1)
        elif kind == "stat":
            draw_stat(ax, p)
        elif kind == "state-timeline":
            draw_state_timeline(ax, p, t0, t1)
        elif kind == "table":
            draw_table(ax, p)
    fig.savefig(out_png, facecolor=BG)
    plt.close(fig)


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    src, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    names = sorted(n for n in os.listdir(src) if n.endswith(".json"))
    if not names:
        raise SystemExit(f"render-dashboards: no dashboards in {src}")
    for name in names:
        board = json.load(open(os.path.join(src, name), encoding="utf-8"))
        png = os.path.join(out, name[:-5] + ".png")
        render(board, png)
        print(f"render-dashboards: {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
