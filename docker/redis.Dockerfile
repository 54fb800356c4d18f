# Redis for compose.cluster.yaml: Debian bookworm's redis-server (7.0), so that the whole
# stack builds from Debian's archive (the official redis:7 image serves as well).
# Append-only, its data in /var/lib/redis (a volume in compose.cluster.yaml); reachable
# on the compose network only, never published.
FROM debian:bookworm-slim
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update && apt-get install -y --no-install-recommends redis-server && \
    rm -rf /var/lib/apt/lists/*
USER redis
EXPOSE 6379
CMD ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--save", "", \
     "--appendonly", "yes", "--dir", "/var/lib/redis"]
