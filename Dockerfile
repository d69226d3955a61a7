# syntax=docker/dockerfile:1
# Images of raftkv (the cluster member) and raftkv-operator, built from this repository:
#
#   docker build --target node     -t ghcr.io/raftkv/raftkv:0.1.0 .
#   docker build --target operator -t ghcr.io/raftkv/raftkv-operator:0.1.0 .
#
# (`make docker-build` builds both.) The SDK stage publishes exactly as `make build` does; the runtime
# stages are Ubuntu Chiseled ASP.NET Core images (no shell, no package manager) running as uid 65532.
# .NET 10 ships no Debian images, so Debian's liblmdb0 comes from a Debian stage (see below).

ARG DOTNET_VERSION=10.0
ARG VERSION=0.1.0
ARG REVISION=unknown

# ---- build: restore once, then publish each program --------------------------------------------
FROM mcr.microsoft.com/dotnet/sdk:${DOTNET_VERSION}-noble AS build
ARG TARGETARCH
WORKDIR /src
# Restore first, from the project files alone, so code changes reuse the restored packages layer.
COPY global.json Directory.Build.props Directory.Packages.props .editorconfig ./
COPY common/ common/
COPY node/src/RaftKv.Raft/RaftKv.Raft.csproj node/src/RaftKv.Raft/
COPY node/src/RaftKv.Storage/RaftKv.Storage.csproj node/src/RaftKv.Storage/
COPY node/src/RaftKv.Protocol/RaftKv.Protocol.csproj node/src/RaftKv.Protocol/
COPY node/src/RaftKv.Server/RaftKv.Server.csproj node/src/RaftKv.Server/
COPY operator/src/RaftKv.Operator/RaftKv.Operator.csproj operator/src/RaftKv.Operator/
RUN case "${TARGETARCH:-amd64}" in arm64) echo linux-arm64 ;; *) echo linux-x64 ;; esac > /rid \
 && dotnet restore node/src/RaftKv.Server/RaftKv.Server.csproj -r "$(cat /rid)" \
 && dotnet restore operator/src/RaftKv.Operator/RaftKv.Operator.csproj -r "$(cat /rid)"
COPY node/ node/
COPY operator/ operator/

FROM build AS publish-node
RUN dotnet publish node/src/RaftKv.Server/RaftKv.Server.csproj -c Release -r "$(cat /rid)" --self-contained false -p:PublishSingleFile=true -p:DebugType=embedded -nologo -o /out \
 && /out/raftkv --version \
 && mkdir -p /rootfs/var/lib/raftkv /rootfs/tmp && chmod 1777 /rootfs/tmp

FROM build AS publish-operator
RUN dotnet publish operator/src/RaftKv.Operator/RaftKv.Operator.csproj -c Release -r "$(cat /rid)" --self-contained false -p:PublishSingleFile=true -p:DebugType=embedded -nologo -o /out \
 && /out/raftkv-operator --version

# ---- Debian's LMDB: LightningDB's bundled library needs glibc 2.38; raftkv falls back to liblmdb.so.0 --
FROM debian:bookworm-slim AS lmdb
RUN apt-get update \
 && apt-get install -y --no-install-recommends liblmdb0 \
 && mkdir -p /lmdb \
 && cp -L /usr/lib/*-linux-gnu/liblmdb.so.0 /lmdb/ \
 && rm -rf /var/lib/apt/lists/*

# ---- node: the raftkv member ------------------------------------------------------------------------
FROM mcr.microsoft.com/dotnet/aspnet:${DOTNET_VERSION}-noble-chiseled AS node
ARG VERSION
ARG REVISION
LABEL org.opencontainers.image.title="raftkv" \
      org.opencontainers.image.description="A Raft key-value server that speaks the etcd v3 API" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.vendor="RaftKV" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="mcr.microsoft.com/dotnet/aspnet:10.0-noble-chiseled"
COPY --from=lmdb /lmdb/liblmdb.so.0 /usr/lib/liblmdb.so.0
COPY --from=publish-node --chown=65532:65532 /rootfs/ /
COPY --from=publish-node /out/raftkv /usr/local/bin/raftkv
USER 65532:65532
WORKDIR /var/lib/raftkv
# 2379: clients (etcd v3 gRPC, /health, /metrics); 2380: peers.
EXPOSE 2379 2380
VOLUME ["/var/lib/raftkv"]
ENTRYPOINT ["/usr/local/bin/raftkv"]

# ---- operator: raftkv-operator (the last stage, so a plain `docker build .` builds it) ----------------
FROM mcr.microsoft.com/dotnet/aspnet:${DOTNET_VERSION}-noble-chiseled AS operator
ARG VERSION
ARG REVISION
LABEL org.opencontainers.image.title="raftkv-operator" \
      org.opencontainers.image.description="Kubernetes operator for RaftCluster resources: self-healing, self-tuning raftkv clusters" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.vendor="RaftKV" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="mcr.microsoft.com/dotnet/aspnet:10.0-noble-chiseled"
COPY --from=publish-operator /out/raftkv-operator /usr/local/bin/raftkv-operator
USER 65532:65532
# /metrics, /healthz, /readyz.
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/raftkv-operator"]
