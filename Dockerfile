# Warren's container image: `docker build -t warren .`, then
#   docker run -p 5672:5672 -v warren-data:/var/lib/warren warren
# Builds on Debian's Rust image and runs on Debian slim as a non-root user.

FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release -p warren --locked

FROM debian:bookworm-slim
RUN groupadd --system --gid 10001 warren \
    && useradd --system --uid 10001 --gid warren --home-dir /var/lib/warren \
        --shell /usr/sbin/nologin warren \
    && mkdir -p /var/lib/warren /etc/warren \
    && chown warren:warren /var/lib/warren
COPY --from=build /src/target/release/warren /usr/local/bin/warren
COPY packaging/docker/warren.toml /etc/warren/warren.toml
USER warren
VOLUME /var/lib/warren
# AMQP, AMQPS, and the management and Prometheus ports once they exist.
EXPOSE 5672 5671 15672 15692
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s \
    CMD ["/usr/local/bin/warren", "ping", "--addr", "127.0.0.1:5672"]
ENTRYPOINT ["/usr/local/bin/warren", "--config", "/etc/warren/warren.toml"]
