# syntax=docker/dockerfile:1
# Flux gateway image (also carries fluxbench, the load generator).
#
#   docker build -t flux-gateway .
#   docker run --rm -p 9090:9090 -p 9100:9100 flux-gateway [FLAGS...]
#
# Build stage: Debian 12 with the project's own scripts. setup.sh installs the
# build packages, Node.js/npm, and runs `npm ci` in dashboard/ (uPlot is
# embedded in the binary); build.sh configures and builds with CMake + Ninja.
# Runtime stage: the shared libraries the binaries link (libevent, prometheus-cpp,
# libsystemd for sd_notify, hiredis for --session-store redis://), a non-root user.

FROM debian:bookworm AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src

# Dependencies first, so that editing sources does not reinstall them.
COPY scripts/setup.sh scripts/setup.sh
COPY dashboard/package.json dashboard/package-lock.json dashboard/
RUN bash scripts/setup.sh && rm -rf /var/lib/apt/lists/*

COPY . .
RUN bash scripts/build.sh /src/build -DBUILD_TESTING=OFF

# Collect the binaries: the gateway and fluxbench (the compose "load" profile).
RUN install -d /out && install -m 0755 build/gateway/flux-gateway build/bench/fluxbench /out/

FROM debian:bookworm-slim AS runtime
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      libevent-core-2.1-7 \
      libevent-pthreads-2.1-7 \
      libprometheus-cpp-core1.0 \
      libsystemd0 \
      libhiredis0.14 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin flux

COPY --from=build /out/ /usr/local/bin/

USER flux:flux
# 9090: the Flux protocol (--port); 9100: /metrics, /stats, /healthz, / (--metrics-port).
EXPOSE 9090 9100

# /healthz answers 200 while the reactor turns its loop, 503 when it is stuck.
# bash's /dev/tcp keeps curl out of the image.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9100 && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && read -r _ code _ <&3 && [[ $code == 200 ]]"]

# Inside a container the gateway must listen on all interfaces. Arguments
# given to `docker run` / compose `command:` are appended; a later --bind wins.
# SIGTERM (docker stop) drains connections for up to --linger.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/flux-gateway", "--bind", "0.0.0.0"]
CMD []
