# roomgate container image: a Debian bookworm build stage and a bookworm-slim runtime
# stage with only the runtime libraries. Build:  docker build -t roomgate .
# Run, config, certificates, reverse proxy, limits, upgrades: docs/OPERATIONS.md.

# ---- build stage ---------------------------------------------------------------------
FROM debian:bookworm AS build
ENV DEBIAN_FRONTEND=noninteractive
WORKDIR /src
# The same Debian -dev packages as a build on the host (README: scripts/deps.sh).
COPY scripts/deps.sh scripts/missing-pkgs.sh scripts/
RUN sh scripts/deps.sh
# libwebsockets 4.1.6 from Debian's source package with patches/lws/ applied, static
# with the libev glue built in (scripts/lws.sh; its own layer, rebuilt only when the
# script or a patch changes). The deb-src entry comes from this image's apt sources.
COPY scripts/lws.sh scripts/
COPY patches/lws patches/lws
RUN sh scripts/lws.sh
COPY CMakeLists.txt ./
COPY gateway gateway
COPY engine engine
COPY protocols protocols
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF \
      -DRG_LWS_PREFIX="$(sh scripts/lws.sh)" \
 && cmake --build build -j"$(nproc)" \
 && cmake --install build --prefix /usr/local --strip \
 && /usr/local/bin/roomgate --version

# ---- runtime stage -------------------------------------------------------------------
FROM debian:bookworm-slim
# Runtime libraries only (ldd build/roomgate: lws itself is linked in statically),
# plus the openssl CLI, which makes a self-signed certificate at start when none is
# mounted and runs the health check.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libev4 libjansson4 libhiredis0.14 libssl3 libcap2 openssl \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log
# A fixed non-root user (uid/gid 10001): mounted keys must be readable by it.
# /var/lib/roomgate is the working directory the entrypoint fills at start (links to
# the certificates and the web root, or a generated self-signed pair).
RUN groupadd --gid 10001 roomgate \
 && useradd --uid 10001 --gid 10001 --home-dir /var/lib/roomgate --no-create-home \
      --no-log-init --shell /usr/sbin/nologin roomgate \
 && install -d -o 10001 -g 0 -m 0770 /var/lib/roomgate \
 && install -d -m 0755 /etc/roomgate /etc/roomgate/certs /usr/share/roomgate
COPY --from=build /usr/local/bin/roomgate /usr/local/bin/roomgate
COPY docker/entrypoint.sh /usr/local/bin/roomgate-entrypoint
COPY docker/healthcheck.sh /usr/local/bin/roomgate-healthcheck
# Development credentials, made by the entrypoint like the self-signed certificate when
# the default config wants them and none are mounted (docs/OPERATIONS.md, "Security").
COPY scripts/dev-auth.sh /usr/local/bin/roomgate-dev-auth
COPY scripts/dev-token.sh /usr/local/bin/roomgate-dev-token
COPY web /usr/share/roomgate/web
# The repository's default config; mount a file here (or a directory on /etc/roomgate)
# to replace it, or set ROOMGATE_CONFIG to another path.
COPY config/roomgate.json /etc/roomgate/roomgate.json
RUN chmod 0755 /usr/local/bin/roomgate-entrypoint /usr/local/bin/roomgate-healthcheck \
      /usr/local/bin/roomgate-dev-auth /usr/local/bin/roomgate-dev-token \
 && chmod -R a+rX /etc/roomgate /usr/share/roomgate \
 && /usr/local/bin/roomgate --version

ENV ROOMGATE_CONFIG=/etc/roomgate/roomgate.json
WORKDIR /var/lib/roomgate
USER 10001:10001
EXPOSE 8443
# SIGTERM (docker stop): roomgate stops accepting, closes WebSocket connections (1001)
# and SSE streams, waits at most 1 s for them, and exits 0. It runs as PID 1 (the
# entrypoint execs it) and starts no children, so no init is needed.
STOPSIGNAL SIGTERM
# GET /healthz on the listeners of the config in use (TLS or plain), bash + openssl,
# no curl; ROOMGATE_HEALTHCHECK_URL=https://HOST:PORT overrides (docs/OPERATIONS.md).
HEALTHCHECK --interval=15s --timeout=5s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/roomgate-healthcheck"]
ENTRYPOINT ["/usr/local/bin/roomgate-entrypoint"]
CMD []

LABEL org.opencontainers.image.title="roomgate" \
      org.opencontainers.image.description="Room-based real-time messaging gateway: WebSocket (wss) and Server-Sent Events (https)" \
      org.opencontainers.image.documentation="docs/OPERATIONS.md"
