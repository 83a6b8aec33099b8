# The two commands a user needs: `make demo` and `make test`. Everything else is a step of those.
SHELL := /bin/bash
CARGO ?= cargo
RELEASE_BIN := target/release/etcd-monitor

.PHONY: all deps build release demo test fmt-check clippy unit-tests rules-test bench-exporter clean

all: build

deps:
	@scripts/deps.sh

build: deps
	$(CARGO) build --workspace

release: deps
	$(CARGO) build --release -p etcd-monitor

# A real 3-member etcd cluster on loopback, the exporter against it; Ctrl-C stops everything.
demo: release
	@scripts/demo.sh $(RELEASE_BIN)

test: deps fmt-check clippy unit-tests rules-test
	@echo "make test: all checks passed"

fmt-check:
	$(CARGO) fmt --all -- --check

clippy: deps
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit-tests: deps
	$(CARGO) test --workspace --no-fail-fast

rules-test: deps
	@scripts/rules-test.sh

# /metrics latency under load against etcd's own /metrics, RSS, and etcd requests per snapshot.
bench-exporter: release
	@scripts/bench-exporter.sh $(RELEASE_BIN)

clean:
	$(CARGO) clean
