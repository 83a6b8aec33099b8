# The two commands a user needs: `make demo` and `make test`; `make check` is the developer's fast loop.
# Everything else is a step of those.
SHELL := /bin/bash
CARGO ?= cargo
RELEASE_BIN := target/release/etcd-monitor

.PHONY: all deps build release demo test test-suite check fmt-check clippy build-tests tests unit-tests corpora rules-test validate-deploy docs-check bench bench-exporter bench-bench bench-alerter clean

all: build

deps:
	@scripts/deps.sh

build: deps
	$(CARGO) build --workspace

release: deps
	$(CARGO) build --release -p etcd-monitor

# A real 3-member etcd cluster on loopback, the exporter, alerter, bench and Prometheus (with the shipped
# rules) against it, their URLs printed; Ctrl-C stops everything.
demo: release
	@scripts/demo.sh $(RELEASE_BIN)

# Tests run under cargo-nextest where it is installed: each test its own process, eight at a time (most
# wait on etcd or Prometheus, not on the CPU; .config/nextest.toml). Without it, cargo test runs them.
NEXTEST := $(shell $(CARGO) nextest --version >/dev/null 2>&1 && echo yes)
# Tests that lack a peer (promtool, Alertmanager, ../shared...) fail under CI=true and are counted here
# elsewhere (etcd-testkit's skip); the summary line of `make test` and `make check` reads it.
SKIP_LOG := $(CURDIR)/target/test-skips.log
export ETCD_MONITOR_SKIP_LOG := $(SKIP_LOG)

# The full suite, what CI runs. Clippy (in its own target directory) runs from the start at a lower CPU
# priority, on the cores the test build leaves idle; once the tests are built they run beside the checks
# of rules/, deploy/ and docs/, which are niced too, so that the tests' timings measure the tests (most
# tests wait on etcd and Prometheus, not on the CPU). Output is grouped per step.
NICE ?=
test: deps fmt-check
	@mkdir -p $(dir $(SKIP_LOG)) && rm -f $(SKIP_LOG)
	@$(MAKE) --no-print-directory -j6 --output-sync=target NICE="nice -n 15" \
	  ETCD_MONITOR_BIN=$(CURDIR)/target/debug/etcd-monitor clippy test-suite
	@scripts/test-summary.sh "make test" $(SKIP_LOG)

test-suite: build-tests
	@$(MAKE) --no-print-directory --output-sync=target tests rules-test validate-deploy docs-check

# The inner loop (a few minutes on a warm build): formatting, lints, every crate's unit tests and the
# data-driven corpora (PromQL against promtool's recorded answers, the rule tests), no server started.
check: deps fmt-check clippy
	@mkdir -p $(dir $(SKIP_LOG)) && rm -f $(SKIP_LOG)
	@$(MAKE) --no-print-directory unit-tests corpora
	@scripts/test-summary.sh "make check" $(SKIP_LOG)

fmt-check:
	$(CARGO) fmt --all -- --check

# In its own target directory: clippy's check-mode artifacts never serve a build (nor a build's clippy),
# and apart, clippy can run while the tests do.
clippy: deps
	CARGO_TARGET_DIR=$(CURDIR)/target/clippy $(NICE) $(CARGO) clippy --workspace --all-targets -- -D warnings

# Also leaves target/debug/etcd-monitor, which the checks after it run (ETCD_MONITOR_BIN): a separate
# `cargo build` would compile it again, with the features of a build without dev-dependencies.
build-tests: deps
	$(CARGO) test --workspace --no-run --quiet

# Every test: unit, integration (real etcd, Prometheus, Alertmanager, Pushgateway, SMTP) and doc-tests.
tests: deps
ifeq ($(NEXTEST),yes)
	$(CARGO) nextest run --workspace
	$(CARGO) test --workspace --doc --quiet
else
	$(CARGO) test --workspace --no-fail-fast
endif

unit-tests: deps
ifeq ($(NEXTEST),yes)
	$(CARGO) nextest run --workspace --lib --bins
else
	$(CARGO) test --workspace --lib --bins
endif

# The PromQL corpus and API, the parsers' property tests, our rule-test runner against promtool's
# verdicts, and `alerter test` on rules/tests and the corpus.
corpora: deps
ifeq ($(NEXTEST),yes)
	$(CARGO) nextest run -p promql -p prom-exposition -p etcd-monitor-alerter --test it --test fuzz \
	  -E 'test(/^(corpus|api|fuzz|promtool_agreement)::/) | package(prom-exposition)'
else
	$(CARGO) test -p promql --test it -- corpus:: api:: fuzz::
	$(CARGO) test -p prom-exposition --test fuzz
	$(CARGO) test -p etcd-monitor-alerter --test it -- promtool_agreement::
endif
	$(CARGO) run --quiet -p etcd-monitor -- alerter test rules/tests/*.yml prometheus/promql/tests/corpus/*.yml >/dev/null

# Rule unit tests with promtool and with `etcd-monitor alerter test`; the PromQL corpus with promtool.
rules-test: deps
	@$(NICE) scripts/rules-test.sh

# The compose file, Dockerfile, Kubernetes manifests, Prometheus and Alertmanager configs.
validate-deploy: deps
	@$(NICE) scripts/validate-deploy.sh

# docs/configuration.md's flag tables match the binary's --help.
docs-check: deps
	@[ -n "$${ETCD_MONITOR_BIN:-}" ] || $(CARGO) build --quiet -p etcd-monitor
	@$(NICE) python3 scripts/gen-config-doc.py --check $${ETCD_MONITOR_BIN:-}

# The three comparisons below (and the alerter at 3 and 30 targets), then one table against issue 13's targets.
bench: release
	@scripts/bench-all.sh $(RELEASE_BIN)

# /metrics latency under load against etcd's own /metrics, RSS, and etcd requests per snapshot.
bench-exporter: release
	@scripts/bench-exporter.sh $(RELEASE_BIN)

# etcd-monitor bench against etcdctl check perf, and a fixed --rate run against its target.
bench-bench: release
	@scripts/bench-bench.sh $(RELEASE_BIN)

# The alerter against Prometheus 2.42 on the etcd mixin's rules: CPU, memory, evaluation time.
bench-alerter: release
	@scripts/bench-alerter.sh $(RELEASE_BIN)

clean:
	$(CARGO) clean
