# syntax=docker/dockerfile:1
# One image per service, built as a `deno compile` binary:
#   docker build --build-arg SERVICE=order --build-arg PORT=5001 -t campus-food/order .
# compose.yaml passes both arguments for each of order (5001), inventory (5002) and
# notification (5003).

# Build stage: the official Deno image (the same 2.x release the repository is tested with)
# downloads the runtime `deno compile` embeds.
FROM denoland/deno:2.9.6 AS build
ARG SERVICE
WORKDIR /src
# The workspace (.dockerignore leaves out tests, docs and local data).
COPY . .
# Dependencies exactly as deno.lock pins them; a stale lock fails the build.
RUN deno install --frozen
RUN test -n "$SERVICE" || { echo "build with --build-arg SERVICE=order|inventory|notification" >&2; exit 1; } \
 && deno task compile --only "$SERVICE" --out /out --data-dir /data

# Runtime stage: the binary, curl for the healthcheck, an unprivileged user, and /data.
FROM debian:bookworm-slim
ARG SERVICE
ARG PORT
RUN test -n "$PORT" || { echo "build with --build-arg PORT=5001|5002|5003" >&2; exit 1; } \
 && apt-get update \
 && apt-get install -y --no-install-recommends curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 campus \
 && useradd --system --uid 10001 --gid campus --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin campus \
 && mkdir /data \
 && chown campus:campus /data
COPY --from=build /out/${SERVICE} /usr/local/bin/campus-service
# The binary may read and write only under /data (baked in at compile time).
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
# Exec form: the service is PID 1 and gets SIGTERM from `docker compose stop` itself.
ENTRYPOINT ["/usr/local/bin/campus-service"]
