# syntax=docker/dockerfile:1
# The etcd-monitor binary (exporter, alerter, bench, backup, status/maintenance) in a small non-root
# image. Build from the repository root, as the original guide does:
#   docker build -t etcd-monitor:latest .
# deploy/Dockerfile is this very file (scripts/validate-deploy.sh keeps the two identical), so the
# earlier `docker build -f deploy/Dockerfile -t etcd-monitor .` still works; both use .dockerignore.

# Build stage: the Rust toolchain plus protoc, which etcd-client's build script needs for etcd's .proto
# files. Versions are pinned to the Debian 12 series (a glob, so security updates still install).
FROM rust:1.95-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends protobuf-compiler=3.21.* libprotobuf-dev=3.21.* \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p etcd-monitor \
    && strip target/release/etcd-monitor \
    && mkdir -p /out/var/lib/etcd-monitor/backups

# Final stage: glibc and CA certificates only (distroless "cc"), no shell, no package manager, running as
# the image's unprivileged "nonroot" user (uid 65532). TLS is rustls, so no OpenSSL is needed.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/etcd-monitor /usr/local/bin/etcd-monitor
# The alert rules, so `etcd-monitor alerter` works without a mounted rules directory.
COPY rules/*.rules.yml /etc/etcd-monitor/rules/
# Where the alerter keeps its state and `backup` its files, owned by the image's user: a Docker volume
# mounted there starts with this ownership (the image has no shell to fix it later).
COPY --from=build --chown=65532:65532 /out/var/lib/etcd-monitor /var/lib/etcd-monitor
USER 65532:65532
# 8080: the exporter's /metrics and REST API (the original design's port).
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/etcd-monitor"]
CMD ["exporter", "--listen=0.0.0.0:8080"]
