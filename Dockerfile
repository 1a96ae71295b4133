# syntax=docker/dockerfile:1

# gendan: one image with every binary.
#
#   gendan             all seven services in one process (`gendan up`, the
#                      default), the demo (`gendan demo`), the benchmark
#                      (`gendan bench`), the simulators (`gendan sim`) and
#                      the command line against running services
#   gendan-orders      the orders service alone (gRPC :50051)
#   gendan-production  the production service alone (gRPC :50052)
#   gendan-saga        the saga coordinator alone (gRPC :50053)
#   gendan-procurement the procurement service alone (gRPC :50054)
#   gendan-quality     the quality service alone (gRPC :50055)
#   gendan-logistics   the logistics service alone (gRPC :50056)
#   gendan-finance     the finance service alone (gRPC :50057)
#   gendan-board       the web tracking board alone (HTTP :8080)
#
# Build:  docker build -t gendan:local .
# Run:    docker compose up   (see deploy/README.md)

############################ build ############################
FROM rust:1.95-bookworm AS builder

# rust-toolchain.toml pins 1.95.0 (plus rustfmt and clippy for development).
# The base image already carries that compiler; naming it here keeps rustup
# from downloading the development components. Keep both in step.
ENV RUSTUP_TOOLCHAIN=1.95.0 \
    CARGO_TERM_COLOR=never

WORKDIR /src
COPY . .

# protoc comes from the protoc-bin-vendored crate; SQL migrations are
# embedded at compile time. The cache mounts keep the registry and the
# target directory between builds; the binaries are copied out of the
# (cached, hence unpersisted) target directory in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --locked --release \
        --bin gendan \
        --bin gendan-orders \
        --bin gendan-production \
        --bin gendan-saga \
        --bin gendan-procurement \
        --bin gendan-quality \
        --bin gendan-logistics \
        --bin gendan-finance \
        --bin gendan-board \
    && mkdir -p /out \
    && cp target/release/gendan \
          target/release/gendan-orders \
          target/release/gendan-production \
          target/release/gendan-saga \
          target/release/gendan-procurement \
          target/release/gendan-quality \
          target/release/gendan-logistics \
          target/release/gendan-finance \
          target/release/gendan-board \
          /out/

############################ runtime ############################
FROM debian:bookworm-slim AS runtime

RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*

# A fixed, non-root uid/gid (Kubernetes checks runAsNonRoot against it).
RUN groupadd --system --gid 10001 gendan \
    && useradd --system --uid 10001 --gid gendan \
        --home-dir /home/gendan --create-home --shell /usr/sbin/nologin gendan

COPY --from=builder /out/ /usr/local/bin/

# In a container the gRPC servers must listen on every interface, not on the
# loopback default. Overridable per deployment.
ENV GENDAN_ORDERS__GRPC_ADDR=0.0.0.0:50051 \
    GENDAN_PRODUCTION__GRPC_ADDR=0.0.0.0:50052 \
    GENDAN_SAGA__GRPC_ADDR=0.0.0.0:50053 \
    GENDAN_PROCUREMENT__GRPC_ADDR=0.0.0.0:50054 \
    GENDAN_QUALITY__GRPC_ADDR=0.0.0.0:50055 \
    GENDAN_LOGISTICS__GRPC_ADDR=0.0.0.0:50056 \
    GENDAN_FINANCE__GRPC_ADDR=0.0.0.0:50057 \
    GENDAN_BOARD__HTTP_ADDR=0.0.0.0:8080 \
    GENDAN_METRICS_ADDR=0.0.0.0:9100 \
    GENDAN_ORDERS__METRICS_ADDR=0.0.0.0:9101 \
    GENDAN_PRODUCTION__METRICS_ADDR=0.0.0.0:9102 \
    GENDAN_SAGA__METRICS_ADDR=0.0.0.0:9103 \
    GENDAN_PROCUREMENT__METRICS_ADDR=0.0.0.0:9104 \
    GENDAN_QUALITY__METRICS_ADDR=0.0.0.0:9105 \
    GENDAN_LOGISTICS__METRICS_ADDR=0.0.0.0:9106 \
    GENDAN_FINANCE__METRICS_ADDR=0.0.0.0:9107

USER 10001:10001
WORKDIR /home/gendan
# gRPC, the board, and the Prometheus metrics of `gendan up` (9100) and of
# each service binary (9101-9107).
EXPOSE 50051 50052 50053 50054 50055 50056 50057 8080 9100 9101 9102 9103 9104 9105 9106 9107

# The binaries handle SIGTERM themselves (graceful shutdown), so they run as
# PID 1 without a shell in between.
CMD ["gendan", "up"]
