# destination-clientsuccess: an Airbyte destination image.
# Build: docker build -t airbyte/destination-clientsuccess:0.1.0 .

FROM rust:1.95-slim-bookworm AS builder
WORKDIR /build
# Dependencies first, in their own layer: build them against stub sources, so a change to
# src/ rebuilds only the connector.
COPY Cargo.toml Cargo.lock ./
COPY engine/Cargo.toml engine/Cargo.toml
COPY integration_tests/Cargo.toml integration_tests/Cargo.toml
# The other destinations are workspace members: their manifests, over stub sources.
COPY destinations/gainsight-px/Cargo.toml destinations/gainsight-px/Cargo.toml
COPY destinations/gainsight-px/emulator/Cargo.toml destinations/gainsight-px/emulator/Cargo.toml
COPY destinations/trackops/Cargo.toml destinations/trackops/Cargo.toml
COPY destinations/trackops/emulator/Cargo.toml destinations/trackops/emulator/Cargo.toml
COPY destinations/revnue/Cargo.toml destinations/revnue/Cargo.toml
COPY destinations/revnue/emulator/Cargo.toml destinations/revnue/emulator/Cargo.toml
RUN mkdir -p src engine/src integration_tests/src destinations/gainsight-px/src destinations/gainsight-px/emulator/src \
    destinations/trackops/src destinations/trackops/emulator/src destinations/revnue/src destinations/revnue/emulator/src \
    && echo 'fn main() {}' > src/main.rs \
    && for d in destinations/gainsight-px destinations/gainsight-px/emulator destinations/trackops destinations/trackops/emulator destinations/revnue destinations/revnue/emulator; do echo 'fn main() {}' > $d/src/main.rs; touch $d/src/lib.rs; done \
    && touch src/lib.rs engine/src/lib.rs integration_tests/src/lib.rs \
    && cargo build --release --locked -p destination-clientsuccess \
    && rm -rf src engine/src
COPY engine/src engine/src
COPY src src
# Cargo may not see the real sources as newer than the stubs' build: make sure it does.
RUN touch src/main.rs src/lib.rs engine/src/lib.rs \
    && cargo build --release --locked -p destination-clientsuccess \
    && strip target/release/destination-clientsuccess

FROM debian:bookworm-slim
# CA certificates: the connector speaks https to api.clientsuccess.com (rustls reads them).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --shell /usr/sbin/nologin --uid 1000 airbyte \
    && mkdir -p /airbyte \
    && chown airbyte:airbyte /airbyte
COPY --from=builder /build/target/release/destination-clientsuccess /usr/local/bin/destination-clientsuccess
WORKDIR /airbyte
USER airbyte
ENV AIRBYTE_ENTRYPOINT="/usr/local/bin/destination-clientsuccess"
ENTRYPOINT ["/usr/local/bin/destination-clientsuccess"]
LABEL io.airbyte.name=airbyte/destination-clientsuccess
LABEL io.airbyte.version=0.1.0
