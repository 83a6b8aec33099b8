#!/usr/bin/env python3
"""Makes the Grafana dashboards in dashboards/*.json (Grafana's classic JSON model).

Dashboards are code here, as the etcd mixin's are jsonnet: one place that says which panels exist, laid
out on Grafana's 24-column grid by the script rather than by hand.

    scripts/gen-dashboards.py           write dashboards/*.json
    scripts/gen-dashboards.py --check   exit 1 if a file is not what this script makes (make test runs it)

Every query uses the `datasource` variable, and `cluster` / `member` variables where the metric has those
labels. etcd-monitor/tests/it/stack/dashboards.rs runs every query of every dashboard against a real Prometheus that
scrapes a real exporter of a real etcd cluster. A panel whose series exist only under a fault says so in
its description ("Data only when ..."), and that test makes that fault.
"""
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "dashboards")
# Grafana's classic dashboard model version (Grafana 12); older Grafanas migrate nothing these panels use.
SCHEMA_VERSION = 41
DS = {"type": "prometheus", "uid": "${datasource}"}
FAILED_GRPC_CODES = "Unknown|FailedPrecondition|ResourceExhausted|Internal|Unavailable|DataLoss|DeadlineExceeded"

C = 'cluster="$cluster"'
CM = 'cluster="$cluster", member=~"$member"'


def target(expr, legend="", ref="A", instant=False, fmt="time_series"):
    return {
        "datasource": DS,
        "refId": ref,
        "expr": expr,
        "legendFormat": legend or "__auto",
        "range": not instant,
        "instant": instant,
        "format": fmt,
    }


def targets(*pairs, instant=False, fmt="time_series"):
    return [target(e, l, chr(ord("A") + i), instant, fmt) for i, (e, l) in enumerate(pairs)]


class Layout:
    """Places panels left to right in rows of 24 columns."""

    def __init__(self):
        self.panels, self.x, self.y, self.row_h, self.next_id = [], 0, 0, 0, 1

    def row(self, title):
        self._newline()
        self.panels.append({"type": "row", "title": title, "collapsed": False, "id": self._id(),
                            "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y}, "panels": []})
        self.y += 1

    def add(self, panel, w, h):
        if self.x + w > 24:
            self._newline()
        panel["id"] = self._id()
        panel["gridPos"] = {"h": h, "w": w, "x": self.x, "y": self.y}
        self.panels.append(panel)
        self.x += w
        self.row_h = max(self.row_h, h)

    def _newline(self):
        if self.x:
            self.y += self.row_h
        self.x, self.row_h = 0, 0

    def _id(self):
        self.next_id += 1
        return self.next_id - 1


def stat(title, description, expr, unit="none", mappings=None, thresholds=None, legend=""):
    return {
        "type": "stat", "title": title, "description": description, "datasource": DS,
        "targets": targets((expr, legend)),
        "fieldConfig": {"defaults": {"unit": unit, "mappings": mappings or [],
                                     "thresholds": thresholds or steps(("green", None)),
                                     "color": {"mode": "thresholds"}}, "overrides": []},
        "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                    "colorMode": "background", "graphMode": "none", "textMode": "auto",
                    "justifyMode": "auto", "orientation": "auto"},
    }


def timeseries(title, description, pairs, unit="none", stack=False, min0=True):
    custom = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "showPoints": "never",
              "spanNulls": False, "stacking": {"mode": "normal" if stack else "none", "group": "A"}}
    defaults = {"unit": unit, "custom": custom, "color": {"mode": "palette-classic"}}
    if min0:
        defaults["min"] = 0
    return {
        "type": "timeseries", "title": title, "description": description, "datasource": DS,
        "targets": targets(*pairs),
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {"legend": {"displayMode": "table", "placement": "bottom", "showLegend": True,
                               "calcs": ["lastNotNull", "max"]},
                    "tooltip": {"mode": "multi", "sort": "desc"}},
    }


def state_timeline(title, description, expr, legend, mappings):
    return {
        "type": "state-timeline", "title": title, "description": description, "datasource": DS,
        "targets": targets((expr, legend)),
        "fieldConfig": {"defaults": {"mappings": mappings, "color": {"mode": "thresholds"},
                                     "thresholds": steps(("red", None), ("green", 1))}, "overrides": []},
        "options": {"showValue": "never", "mergeValues": True, "rowHeight": 0.8,
                    "legend": {"showLegend": False}},
    }


def table(title, description, pairs, transformations=None, unit="none"):
    return {
        "type": "table", "title": title, "description": description, "datasource": DS,
        "targets": targets(*pairs, instant=True, fmt="table"),
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"showHeader": True, "cellHeight": "sm"},
        "transformations": transformations or [],
    }


def steps(*colors):
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for c, v in colors]}


def boolean(true_text, false_text, true_good=True):
    good, bad = ("green", "red") if true_good else ("red", "green")
    return [{"type": "value", "options": {"1": {"text": true_text, "color": good, "index": 0},
                                          "0": {"text": false_text, "color": bad, "index": 1}}}]


def variables(with_member=True, cluster_metric="etcd_cluster_member_count"):
    vs = [{
        "name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
        "hide": 0, "refresh": 1, "regex": "", "current": {},
    }, query_var("cluster", "Cluster", f"label_values({cluster_metric}, cluster)")]
    if with_member:
        vs.append(query_var("member", "Member", 'label_values(etcd_member_up{cluster="$cluster"}, member)',
                            multi=True))
    return vs


def query_var(name, label, definition, multi=False):
    v = {
        "name": name, "label": label, "type": "query", "datasource": DS,
        "definition": definition,
        "query": {"query": definition, "refId": "PrometheusVariableQueryEditor-VariableQuery", "qryType": 1},
        "refresh": 2, "sort": 1, "hide": 0, "regex": "", "current": {},
        "multi": multi, "includeAll": multi,
    }
    if multi:
        # Every member when "All" is picked, as a regex, so `member=~"$member"` needs no list.
        v["allValue"] = ".+"
    return v


def dashboard(uid, title, description, layout, templating, tags):
    return {
        "uid": uid, "title": title, "description": description, "tags": tags,
        "schemaVersion": SCHEMA_VERSION, "version": 1, "editable": True, "graphTooltip": 1,
        "time": {"from": "now-1h", "to": "now"}, "refresh": "30s", "timezone": "browser",
        "timepicker": {}, "fiscalYearStartMonth": 0, "liveNow": False,
        "annotations": {"list": [{
            "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True,
            "hide": True, "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts",
            "type": "dashboard"}]},
        "links": [{"title": "etcd dashboards", "type": "dashboards", "tags": ["etcd"], "asDropdown": True,
                   "includeVars": True, "keepTime": True}],
        "templating": {"list": templating},
        "panels": layout.panels,
    }


def overview():
    g = Layout()
    g.row("Cluster health (the exporter's view)")
    g.add(stat("Cluster healthy", "Quorum holds, one agreed leader, no split brain, no active alarm.",
               f"max(etcd_cluster_healthy{{{C}}})", mappings=boolean("Healthy", "Unhealthy")), 4, 4)
    g.add(stat("Leader", "The reachable members agree on one leader.",
               f"max(etcd_cluster_has_leader{{{C}}})", mappings=boolean("Agreed", "None")), 4, 4)
    g.add(stat("Split brain", "Reachable members name different leaders in one term, or report different cluster IDs.",
               f"max(etcd_cluster_split_brain{{{C}}})", mappings=boolean("Split brain", "No", true_good=False)), 4, 4)
    g.add(stat("Fault tolerance", "Healthy voting members minus the quorum size: how many more members may fail. "
               "Below 0 the quorum is lost.", f"min(etcd_cluster_fault_tolerance{{{C}}})",
               thresholds=steps(("red", None), ("orange", 0), ("green", 1))), 4, 4)
    g.add(stat("Healthy / quorum / members", "Healthy voting members, the quorum size, and the members in the member list.",
               f"max(etcd_cluster_healthy_members{{{C}}})", legend="healthy"), 4, 4)
    g.panels[-1]["targets"] = targets((f"max(etcd_cluster_healthy_members{{{C}}})", "healthy"),
                                      (f"max(etcd_cluster_quorum_size{{{C}}})", "quorum"),
                                      (f"max(etcd_cluster_member_count{{{C}}})", "members"))
    g.panels[-1]["options"]["colorMode"] = "value"
    g.add(stat("Exporter reaches cluster", "The exporter could read the member list in its last snapshot.",
               f"max(etcd_cluster_reachable{{{C}}})", mappings=boolean("Yes", "No")), 4, 4)
    # Counts of bad things: `or vector(0)` so that a healthy cluster shows 0, not "No data".
    g.add(stat("Data consistent", "The exporter's last completed HashKV check (every --hashkv-interval): every "
               "comparable pair of voting members holds the same data.",
               f"min(etcd_cluster_hashkv_consistent{{{C}}})", mappings=boolean("Consistent", "Diverged")), 4, 4)
    g.add(stat("Members down", "Members in the member list that did not answer the exporter's Status call.",
               f"count(etcd_member_up{{{C}}} == 0) or vector(0)",
               thresholds=steps(("green", None), ("red", 1))), 4, 4)
    g.add(stat("Alarms", "NOSPACE and CORRUPT alarms active now (listed below).",
               f"count(etcd_cluster_alarm{{{C}}} > 0) or vector(0)",
               thresholds=steps(("green", None), ("red", 1))), 4, 4)
    g.add(stat("Certificates expiring", "Certificates (members' client and peer URLs, the exporter's own) that "
               "expire within 14 days.",
               f"count(etcd_member_certificate_expiry_timestamp_seconds{{{C}}} - time() < 14 * 86400 "
               f"or etcd_exporter_client_certificate_expiry_timestamp_seconds{{{C}}} - time() < 14 * 86400) or vector(0)",
               thresholds=steps(("green", None), ("orange", 1))), 4, 4)
    g.add(stat("Learners", "Members that do not vote yet (added as learners, not promoted).",
               f"sum(max by (member) (etcd_member_is_learner{{{C}}}))",
               thresholds=steps(("green", None), ("orange", 1))), 4, 4)
    g.add(stat("etcd versions", "Distinct etcd versions the members run: more than one for long is an unfinished "
               "upgrade.", f'count(count by (version) (etcd_member_info{{{C}, version!=""}}))',
               thresholds=steps(("green", None), ("orange", 2))), 4, 4)

    g.add(table("Members", "Every member in the member list, from the exporter's last snapshot: identity, "
                "whether it answers, leads, or is a learner, and its database against its quota.",
                [(f"etcd_member_info{{{CM}}}", ""),
                 (f"etcd_member_up{{{CM}}}", ""),
                 (f"etcd_member_is_leader{{{CM}}}", ""),
                 (f"etcd_member_is_learner{{{CM}}}", ""),
                 (f"etcd_member_db_size_bytes{{{CM}}} / etcd_member_quota_bytes{{{CM}}}", "")],
                transformations=[
                    {"id": "merge", "options": {}},
                    {"id": "organize", "options": {
                        "excludeByName": {"Time": True, "__name__": True, "job": True, "instance": True,
                                          "cluster": True, "Value #A": True},
                        "renameByName": {"Value #B": "up", "Value #C": "leader", "Value #D": "learner",
                                         "Value #E": "quota used"}}}]), 24, 7)
    g.add(state_timeline("Members up", "Whether each member answered the exporter's Status call.",
                         f"etcd_member_up{{{CM}}}", "{{member}}", boolean("up", "down")), 12, 6)
    g.add(state_timeline("Leader by member", "Which member reports itself as leader, over time.",
                         f"etcd_member_is_leader{{{CM}}}", "{{member}}", boolean("leader", "follower")), 12, 6)
    g.add(timeseries("Leader changes", "Leader changes the exporter observed, per interval.",
                     [(f"increase(etcd_cluster_leader_changes_total{{{C}}}[$__rate_interval])", "leader changes")]), 8, 7)
    g.add(table("Active alarms", "Active etcd alarms (NOSPACE, CORRUPT) by member. "
                "Data only when an alarm is active: a healthy cluster has no rows here.",
                [(f"etcd_cluster_alarm{{{C}}} > 0", "")],
                transformations=[{"id": "organize", "options": {
                    "excludeByName": {"Time": True, "__name__": True, "job": True, "instance": True,
                                      "Value": True}}}]), 8, 7)
    g.add(table("Firing alerts", "Alerts Prometheus fires for this cluster (rules/). "
                "Data only while an alert fires.",
                [(f'ALERTS{{alertstate="firing", {C}}}', "")],
                transformations=[{"id": "organize", "options": {
                    "excludeByName": {"Time": True, "__name__": True, "Value": True, "alertstate": True}}}]), 8, 7)

    g.row("Database")
    g.add(timeseries("Database size against quota", "The backend file, the part of it in use (the rest is free "
                     "pages that defragmentation returns), and the quota at which etcd raises NOSPACE.",
                     [(f"etcd_member_db_size_bytes{{{CM}}}", "{{member}} size"),
                      (f"etcd_member_db_size_in_use_bytes{{{CM}}}", "{{member}} in use"),
                      (f"max(etcd_member_quota_bytes{{{CM}}})", "quota")], unit="bytes"), 8, 8)
    g.add(timeseries("Quota used", "Database file size as a share of the quota; the alerts step in at 80, 90 and 95%.",
                     [(f"etcd_member_db_size_bytes{{{CM}}} / etcd_member_quota_bytes{{{CM}}}", "{{member}}")],
                     unit="percentunit"), 5, 8)
    g.add(timeseries("Database growth rate", "How fast each member's database file grows (negative after a "
                     "defragmentation), bytes per second.",
                     [(f"deriv(etcd_member_db_size_bytes{{{CM}}}[$__rate_interval])", "{{member}}")],
                     unit="Bps", min0=False), 5, 8)
    g.add(state_timeline("Defragmentation recommended", "The exporter's rule: free pages ≥ 50% and ≥ 64 MiB, or "
                         "the file ≥ 80% of the quota with ≥ 10% free.",
                         f"etcd_member_defrag_recommended{{{CM}}}", "{{member}}",
                         boolean("defrag", "ok", true_good=False)), 6, 8)

    g.row("Consistency")
    g.add(timeseries("HashKV checks", "The exporter's consistency checks per interval, and those that could "
                     "not be completed (a member down, a revision compacted away): never a verdict on the data.",
                     [(f"increase(etcd_cluster_hashkv_checks_total{{{C}}}[$__rate_interval])", "checks"),
                      (f"increase(etcd_cluster_hashkv_check_failures_total{{{C}}}[$__rate_interval])", "not completed")]),
          6, 7)
    g.add(timeseries("Divergence between members", "Largest minus smallest revision, and raft index, across "
                     "members. Some spread is normal under writes (members are asked one after another).",
                     [(f"etcd_cluster_revision_divergence{{{C}}}", "revision"),
                      (f"etcd_cluster_raft_index_divergence{{{C}}}", "raft index")]), 6, 7)
    g.add(timeseries("Revision", "MVCC revision per member.",
                     [(f"etcd_member_revision{{{CM}}}", "{{member}}")], min0=False), 6, 7)
    g.add(timeseries("Apply backlog", "Raft index minus applied index per member: entries committed but not yet "
                     "applied.",
                     [(f"etcd_member_raft_index{{{CM}}} - etcd_member_raft_applied_index{{{CM}}}", "{{member}}")]), 6, 7)

    g.row("Probes (the exporter's requests, as a client sees them)")
    g.add(timeseries("Probe latency, 99th percentile", "Linearizable read, serializable read and write probes, "
                     "per member, against --max-latency-ms (etcdProbeLatencyHigh).",
                     [(f"histogram_quantile(0.99, sum by (member, op, le) (rate(etcd_probe_duration_seconds_bucket{{{CM}}}[$__rate_interval])))",
                       "{{member}} {{op}}"),
                      (f"max(etcd_exporter_threshold_max_latency_seconds{{{C}}})", "--max-latency-ms")], unit="s"), 8, 8)
    for title, op in (("Write latency", "write"), ("Read latency", "read_linearizable")):
        g.add(timeseries(f"{title}, p50 / p95 / p99", f"The {op} probe over the selected members: the original "
                         "design's latency percentiles.",
                         [(f'histogram_quantile({q}, sum by (le) (rate(etcd_probe_duration_seconds_bucket{{{CM}, op="{op}"}}[$__rate_interval])))',
                           f"p{int(q * 100)}") for q in (0.5, 0.95, 0.99)], unit="s"), 8, 8)
    g.add(timeseries("Probe failures", "Failed or timed-out probes per second.",
                     [(f"sum by (member, op) (rate(etcd_probe_failures_total{{{CM}}}[$__rate_interval]))",
                       "{{member}} {{op}}")], unit="reqps"), 12, 7)
    g.add(state_timeline("Probe success", "Whether the last probe of each kind succeeded.",
                         f"etcd_probe_success{{{CM}}}", "{{member}} {{op}}", boolean("ok", "failed")), 12, 7)

    g.row("Certificates")
    g.add(timeseries("Days until certificates expire", "The certificate each member serves on its client and peer "
                     "URLs, and the exporter's own client certificate: etcdMemberCertificateExpiring warns under 14 "
                     "days, is critical under 3. Empty for a cluster without TLS.",
                     [(f"(etcd_member_certificate_expiry_timestamp_seconds{{{CM}}} - time()) / 86400", "{{member}} {{url}}"),
                      (f"(etcd_exporter_client_certificate_expiry_timestamp_seconds{{{C}}} - time()) / 86400",
                       "etcd-monitor's client certificate")], min0=False), 24, 7)

    g.row("Exporter")
    g.add(timeseries("Collector duration", "How long each step of the last snapshot took.",
                     [(f"etcd_exporter_collector_duration_seconds{{{C}}}", "{{collector}}")], unit="s"), 8, 7)
    g.add(timeseries("Snapshot duration, 99th percentile", "",
                     [(f"histogram_quantile(0.99, sum by (le) (rate(etcd_exporter_snapshot_duration_seconds_bucket{{{C}}}[$__rate_interval])))",
                       "p99")], unit="s"), 8, 7)
    g.add(timeseries("Snapshot age", "Seconds since the last snapshot started; it should stay under the "
                     "health-check interval.",
                     [(f"time() - etcd_exporter_last_snapshot_timestamp_seconds{{{C}}}", "age")], unit="s"), 8, 7)
    g.add(timeseries("Member call errors", "Calls from the exporter to a member that failed, per second, by "
                     "collector (0 while every call succeeds).",
                     [(f"sum by (member, collector) (rate(etcd_exporter_member_errors_total{{{CM}}}[$__rate_interval]))",
                       "{{member}} {{collector}}")], unit="reqps"), 12, 7)
    g.add(state_timeline("Member /metrics read", "Whether the exporter could read each member's own /metrics for "
                         "the pass-through.", f"etcd_exporter_member_metrics_up{{{CM}}}", "{{member}}",
                         boolean("ok", "failed")), 12, 7)
    backups(g)
    return dashboard("etcd-monitor-overview", "etcd cluster overview",
                     "etcd-monitor's cluster-wide view: health, leader, quorum, split brain, alarms, database "
                     "against quota, probes.", g, variables(), ["etcd", "etcd-monitor"])


def backups(g):
    """etcd-monitor backup's metrics (Pushgateway or the backup daemon), for the cluster."""
    g.row("Backups (etcd-monitor backup)")
    g.add(stat("Since the last good backup", "Time since the last successful backup finished; "
               "etcdBackupTooOld fires past the backup job's --max-age (etcd_backup_max_age_seconds).",
               f"time() - max(etcd_backup_last_success_timestamp_seconds{{{C}}})", unit="s"), 6, 6)
    g.add(stat("Failed backup runs, last day", "Runs that made no backup; the job's log says why.",
               f"round(sum(increase(etcd_backup_failures_total{{{C}}}[1d]))) or vector(0)",
               thresholds=steps(("green", None), ("red", 1))), 6, 6)
    g.add(timeseries("Backup size", "Size of the last successful backup file.",
                     [(f"max(etcd_backup_size_bytes{{{C}}})", "size")], unit="bytes"), 6, 6)
    g.add(timeseries("Backup duration", "How long the last successful backup took.",
                     [(f"max(etcd_backup_duration_seconds{{{C}}})", "duration")], unit="s"), 6, 6)


def internals():
    g = Layout()
    g.row("Requests")
    g.add(stat("Members with a leader", "Members that report a leader (etcd_server_has_leader).",
               f"sum(etcd_server_has_leader{{{CM}}})"), 4, 7)
    g.add(timeseries("gRPC requests", "Unary requests started, and those that failed with a server-side code, "
                     "per second.",
                     [(f'sum(rate(grpc_server_started_total{{{CM}, grpc_type="unary"}}[$__rate_interval]))', "started"),
                      (f'sum(rate(grpc_server_handled_total{{{CM}, grpc_type="unary", grpc_code=~"{FAILED_GRPC_CODES}"}}[$__rate_interval]))',
                       "failed")], unit="reqps"), 10, 7)
    g.add(timeseries("Active streams", "Watch and lease keep-alive streams open.",
                     [(f'sum(grpc_server_started_total{{{CM}, grpc_service="etcdserverpb.Watch", grpc_type="bidi_stream"}}) - '
                       f'sum(grpc_server_handled_total{{{CM}, grpc_service="etcdserverpb.Watch", grpc_type="bidi_stream"}})',
                       "watch streams"),
                      (f'sum(grpc_server_started_total{{{CM}, grpc_service="etcdserverpb.Lease", grpc_type="bidi_stream"}}) - '
                       f'sum(grpc_server_handled_total{{{CM}, grpc_service="etcdserverpb.Lease", grpc_type="bidi_stream"}})',
                       "lease streams")]), 10, 7)

    g.row("Raft")
    # The mixin's "Raft Proposals" panel queries changes(etcd_server_leader_changes_seen_total[1d]), the
    # same as its leader-elections panel; this one shows the proposals.
    g.add(timeseries("Raft proposals", "Proposals committed and applied per second, pending now, and failed per "
                     "second. Applied trailing committed for long means a slow apply loop.",
                     [(f"sum by (member) (rate(etcd_server_proposals_committed_total{{{CM}}}[$__rate_interval]))", "{{member}} committed"),
                      (f"sum by (member) (rate(etcd_server_proposals_applied_total{{{CM}}}[$__rate_interval]))", "{{member}} applied"),
                      (f"sum by (member) (etcd_server_proposals_pending{{{CM}}})", "{{member}} pending"),
                      (f"sum by (member) (rate(etcd_server_proposals_failed_total{{{CM}}}[$__rate_interval]))", "{{member}} failed")]),
          12, 8)
    g.add(timeseries("Leader elections per day", "Leader changes each member saw in the last day.",
                     [(f"changes(etcd_server_leader_changes_seen_total{{{CM}}}[1d])", "{{member}}")]), 6, 8)
    g.add(timeseries("Peer round trip time, 99th percentile", "From each member to each peer (To: the peer's ID). "
                     "etcd measures it every 30 s, so a new cluster shows it after about a minute.",
                     [(f"histogram_quantile(0.99, sum by (member, To, le) (rate(etcd_network_peer_round_trip_time_seconds_bucket{{{CM}}}[$__rate_interval])))",
                       "{{member}} → {{To}}")], unit="s"), 6, 8)

    g.row("Disk and database")
    g.add(timeseries("Disk sync duration, 99th percentile", "WAL fsync and backend commit.",
                     [(f"histogram_quantile(0.99, sum by (member, le) (rate(etcd_disk_wal_fsync_duration_seconds_bucket{{{CM}}}[$__rate_interval])))",
                       "{{member}} WAL fsync"),
                      (f"histogram_quantile(0.99, sum by (member, le) (rate(etcd_disk_backend_commit_duration_seconds_bucket{{{CM}}}[$__rate_interval])))",
                       "{{member}} backend commit")], unit="s"), 12, 8)
    g.add(timeseries("Database size", "The backend file per member, from etcd's own metric.",
                     [(f"etcd_mvcc_db_total_size_in_bytes{{{CM}}}", "{{member}}"),
                      (f"etcd_mvcc_db_total_size_in_use_in_bytes{{{CM}}}", "{{member}} in use")], unit="bytes"), 12, 8)

    g.row("Memory and traffic")
    g.add(timeseries("Memory", "Resident memory of each etcd process.",
                     [(f"process_resident_memory_bytes{{{CM}}}", "{{member}}")], unit="bytes"), 8, 7)
    g.add(timeseries("Client traffic", "gRPC bytes received from and sent to clients, per second.",
                     [(f"rate(etcd_network_client_grpc_received_bytes_total{{{CM}}}[$__rate_interval])", "{{member}} in"),
                      (f"rate(etcd_network_client_grpc_sent_bytes_total{{{CM}}}[$__rate_interval])", "{{member}} out")],
                     unit="Bps"), 8, 7)
    g.add(timeseries("Peer traffic", "Bytes received from and sent to peers, per second.",
                     [(f"sum by (member) (rate(etcd_network_peer_received_bytes_total{{{CM}}}[$__rate_interval]))", "{{member}} in"),
                      (f"sum by (member) (rate(etcd_network_peer_sent_bytes_total{{{CM}}}[$__rate_interval]))", "{{member}} out")],
                     unit="Bps"), 8, 7)
    return dashboard("etcd-monitor-internals", "etcd internals",
                     "etcd's own metrics, passed through by the exporter with cluster and member labels: the "
                     "etcd mixin's panels, with its Raft proposals panel fixed.", g, variables(),
                     ["etcd", "etcd-monitor"])


def bench():
    g = Layout()
    W = 'workload=~"$workload"'
    g.row("Benchmark results (etcd-monitor bench, via the Pushgateway)")
    g.add(timeseries("Throughput", "Requests per second of each run, by workload.",
                     [(f"etcd_bench_requests_per_second{{{W}}}", "{{workload}}")], unit="reqps"), 12, 8)
    g.add(timeseries("Latency", "Median and 99th percentile latency of each run, by workload.",
                     [(f'etcd_bench_latency_seconds{{{W}, quantile="0.5"}}', "{{workload}} p50"),
                      (f'etcd_bench_latency_seconds{{{W}, quantile="0.99"}}', "{{workload}} p99")], unit="s"), 12, 8)
    g.add(timeseries("Throughput against the day's median", "The last run's throughput divided by its median over "
                     "the last day: under 0.7 fires etcdBenchThroughputRegression.",
                     [(f"etcd_bench_requests_per_second{{{W}}} / quantile_over_time(0.5, etcd_bench_requests_per_second{{{W}}}[1d])",
                       "{{workload}}")], unit="percentunit"), 12, 7)
    g.add(timeseries("Errors", "Failed requests of the last run.",
                     [(f"sum by (workload) (etcd_bench_errors_total{{{W}}})", "{{workload}}")]), 6, 7)
    g.add(stat("Last run succeeded", "", f"min(etcd_bench_success{{{W}}})", mappings=boolean("Yes", "No")), 3, 7)
    g.add(stat("Since the last run", "", f"time() - max(etcd_bench_last_run_timestamp_seconds{{{W}}})", unit="s",
               thresholds=steps(("green", None), ("orange", 3600), ("red", 9000))), 3, 7)
    workload = query_var("workload", "Workload", "label_values(etcd_bench_requests_per_second, workload)", multi=True)
    tmpl = [variables(with_member=False)[0], workload]
    return dashboard("etcd-monitor-bench", "etcd benchmark results",
                     "Results of etcd-monitor bench runs over time.", g, tmpl, ["etcd", "etcd-monitor"])


def main():
    boards = {"etcd-cluster-overview.json": overview(), "etcd-internals.json": internals(),
              "etcd-bench.json": bench()}
    check = "--check" in sys.argv[1:]
    stale = []
    for name, board in boards.items():
        text = json.dumps(board, indent=2, ensure_ascii=False) + "\n"
        path = os.path.join(OUT, name)
        if check:
            try:
                current = open(path, encoding="utf-8").read()
            except FileNotFoundError:
                current = None
            if current != text:
                stale.append(f"dashboards/{name}")
        else:
            os.makedirs(OUT, exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            print(f"gen-dashboards: wrote dashboards/{name}")
    if stale:
        print("gen-dashboards: out of sync with scripts/gen-dashboards.py: " + ", ".join(stale)
              + " (run scripts/gen-dashboards.py)", file=sys.stderr)
        return 1
    if check:
        print("gen-dashboards: dashboards/ in sync")
    return 0


if __name__ == "__main__":
    sys.exit(main())
