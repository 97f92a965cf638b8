# One image per service, in two targets that run alike (same permissions, user, healthcheck,
# /data volume and signal handling):
#   compiled (the default)  a `deno compile` binary; its build downloads the Deno runtime
#   source                  `deno run --cached-only` on the workspace, dependencies cached here
#   docker build --build-arg SERVICE=order --build-arg PORT=5001 [--target source] .
# compose.yaml passes SERVICE and PORT for each service and the target from SERVICE_TARGET.
# There is no `# syntax=` line, so the legacy builder (DOCKER_BUILDKIT=0) builds it as BuildKit
# does. The legacy builder runs every stage above the target, so `source` comes before the
# compile stage, which it does not need.

# The workspace with its dependencies, exactly as deno.lock pins them (a stale lock fails the
# build), in DENO_DIR. The official Deno image: the same 2.x release the repository is tested with.
FROM denoland/deno:2.9.6 AS deps
ENV DENO_DIR=/deno-dir
WORKDIR /src
# .dockerignore leaves out tests, docs and local data.
COPY . .
RUN deno install --frozen \
 && deno cache --frozen services/*/main.ts

# What both targets share: curl for the healthcheck, an unprivileged user, /data, and the service
# as the container's PID 1 (exec form), so `docker compose stop` sends SIGTERM to the service itself.
FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 campus \
 && useradd --system --uid 10001 --gid campus --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin campus \
 && mkdir /data \
 && chown campus:campus /data
ARG SERVICE
ARG PORT
RUN test -n "$SERVICE" && test -n "$PORT" \
 || { echo "build with --build-arg SERVICE=order|inventory|notification --build-arg PORT=5001|5002|5003" >&2; exit 1; }
LABEL org.opencontainers.image.title="campus-food ${SERVICE} service"
ENV PORT=${PORT} \
    HOST=0.0.0.0 \
    DATA_DIR=/data
# A named volume mounted here starts with this folder's owner, so the service can write to it.
VOLUME ["/data"]
EXPOSE ${PORT}
USER 10001:10001
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD curl -fsS "http://127.0.0.1:${PORT}/health" > /dev/null || exit 1
ENTRYPOINT ["/usr/local/bin/campus-service"]

# The entry program of the source target: it execs `deno run --cached-only` with the permissions
# of tools/service_runtime.ts (network, the configuration's variables, files under /data only).
FROM deps AS source-entry
ARG SERVICE
RUN mkdir /out \
 && deno run --allow-write=/out tools/source_entry.ts --service "$SERVICE" --out /out/campus-service

# Target `source`: deno, the cached dependencies and the workspace, read-only to the service.
FROM runtime AS source
ENV DENO_DIR=/deno-dir \
    DENO_NO_UPDATE_CHECK=1
COPY --from=deps /usr/bin/deno /usr/local/bin/deno
COPY --from=deps /deno-dir /deno-dir
COPY --from=deps /src/deno.json /src/deno.lock /app/
COPY --from=deps /src/shared /app/shared
COPY --from=deps /src/services /app/services
COPY --from=source-entry /out/campus-service /usr/local/bin/campus-service

# The binary, with the same permissions baked in and the data folder fixed at compile time.
FROM deps AS build
ARG SERVICE
RUN deno task compile --only "$SERVICE" --out /out --data-dir /data

# Target `compiled`, the default (the last stage): the binary alone.
FROM runtime AS compiled
ARG SERVICE
COPY --from=build /out/${SERVICE} /usr/local/bin/campus-service
