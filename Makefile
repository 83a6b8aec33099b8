# The two commands a user needs: `make demo` and `make test`. Everything else is a step of those.
SHELL := /bin/bash
CARGO ?= cargo
RELEASE_BIN := target/release/etcd-monitor

.PHONY: all deps build release demo test fmt-check clippy unit-tests rules-test validate-deploy docs-check bench bench-exporter bench-bench bench-alerter clean

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

test: deps fmt-check clippy unit-tests rules-test validate-deploy docs-check
	@echo "make test: all checks passed"

fmt-check:
	$(CARGO) fmt --all -- --check

clippy: deps
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit-tests: deps
	$(CARGO) test --workspace --no-fail-fast

# Rule unit tests with promtool and with `etcd-monitor alerter test`; the PromQL corpus with promtool.
rules-test: deps
	@scripts/rules-test.sh

# The compose file, Dockerfile, Kubernetes manifests, Prometheus and Alertmanager configs.
validate-deploy: deps
	@scripts/validate-deploy.sh

# docs/configuration.md's flag tables match the binary's --help.
docs-check: deps
	$(CARGO) build --quiet -p etcd-monitor
	@python3 scripts/gen-config-doc.py --check

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
