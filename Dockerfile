# syntax=docker/dockerfile:1
# destination-clientsuccess: an Airbyte destination image, built from the repository root.
# Build: docker build -t airbyte/destination-clientsuccess:0.1.0 .   (or scripts/image.sh clientsuccess)

FROM rust:1.95-slim-bookworm AS builder
WORKDIR /build
# The whole workspace (.dockerignore leaves out target/ and the virtualenvs): cargo loads every
# member, so no destination's image lists another's crates.
COPY . .
# The registry and the build directory are cache mounts: a rebuild compiles what changed, not
# every dependency again.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/build/target,sharing=locked \
    cargo build --release --locked -p destination-clientsuccess \
    && cp target/release/destination-clientsuccess /usr/local/bin/destination-clientsuccess \
    && strip /usr/local/bin/destination-clientsuccess

FROM debian:bookworm-slim
# CA certificates: the connector speaks https to api.clientsuccess.com (rustls reads them, and
# SSL_CERT_FILE may name another bundle). A POSIX shell: Airbyte's launcher starts the
# container with sh -c 'eval "$AIRBYTE_ENTRYPOINT ..."'.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/* \
    && useradd --create-home --shell /usr/sbin/nologin --uid 1000 airbyte \
    && mkdir -p /airbyte \
    && chown airbyte:airbyte /airbyte
COPY --from=builder /usr/local/bin/destination-clientsuccess /usr/local/bin/destination-clientsuccess
WORKDIR /airbyte
USER airbyte
ENV AIRBYTE_ENTRYPOINT="/usr/local/bin/destination-clientsuccess"
ENTRYPOINT ["/usr/local/bin/destination-clientsuccess"]
LABEL io.airbyte.name=airbyte/destination-clientsuccess
LABEL io.airbyte.version=0.1.0
