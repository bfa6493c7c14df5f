# syntax=docker/dockerfile:1
# Builds the `strata` binary and ships it on a slim Debian with nothing else but CA
# certificates: every client uses rustls (no OpenSSL).
#
#   docker build -t strata:local .
#   docker run --rm strata:local --help

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# The cache mounts keep the registry and build artefacts between builds (BuildKit).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin strata \
 && install -m 0755 target/release/strata /usr/local/bin/strata

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/strata --create-home strata
COPY --from=build /usr/local/bin/strata /usr/local/bin/strata
USER strata
# Checkpoints and replicator.json live in <data_dir>/<version>/; mount a volume here.
WORKDIR /var/lib/strata
VOLUME ["/var/lib/strata"]
# /metrics, /health/live, /health/ready and /status (one port per version, from the config).
EXPOSE 9641 9642 9643
ENTRYPOINT ["strata"]
CMD ["--help"]
