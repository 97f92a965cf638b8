/**
 * compose.yaml, the Dockerfile and .dockerignore, checked by parsing against shared/config.ts and
 * tools/compile.ts: the container deployment must agree with what the services read.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { parse } from "yaml";
import { DEFAULT_PORTS, ENV_DEFAULTS, loadConfig, type ServiceName } from "@campus/shared/config";
import { CONTAINER_DATA_DIR } from "../tools/compile.ts";
import { BROKER_SERVICE, composeService } from "./compose_backend.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const SERVICES = Object.keys(DEFAULT_PORTS) as ServiceName[];

interface ComposeService {
  image?: string;
  hostname?: string;
  build?: { context?: string; dockerfile?: string; args?: Record<string, string> };
  environment?: Record<string, string | number>;
  ports?: string[];
  volumes?: string[];
  depends_on?: Record<string, { condition?: string }>;
  restart?: string;
  stop_grace_period?: string;
  healthcheck?: { test?: string[]; interval?: string; timeout?: string; retries?: number };
}

interface ComposeFile {
  name?: string;
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

const compose: ComposeFile = parse(await Deno.readTextFile(join(ROOT, "compose.yaml")), {
  merge: true,
});

/** A value as Compose resolves it when the variable is unset: `${NAME:-default}` → default. */
function resolveDefault(value: string | number): string {
  return String(value).replace(/\$\{(\w+):?-([^}]*)\}/g, (_, _name, fallback) => fallback);
}

/** Seconds in a Compose duration such as `15s`, `1m` or `1m30s`. */
function seconds(duration: string): number {
  const match = /^(?:(\d+)m)?(?:(\d+)s)?$/.exec(duration);
  assert.ok(match && duration, `"${duration}" is not a duration`);
  return Number(match[1] ?? 0) * 60 + Number(match[2] ?? 0);
}

function app(service: ServiceName): ComposeService {
  const entry = compose.services[composeService(service)];
  assert.ok(entry, `compose.yaml has no ${composeService(service)}`);
  return entry;
}

Deno.test("compose.yaml runs the broker and exactly the three services", () => {
  assert.deepEqual(
    Object.keys(compose.services).sort(),
    [BROKER_SERVICE, ...SERVICES.map(composeService)].sort(),
  );
  assert.equal(compose.name, "campus-food");
});

Deno.test("compose.yaml runs RabbitMQ 3 with the management UI, a healthcheck and a volume", () => {
  const broker = compose.services[BROKER_SERVICE];
  assert.match(broker.image ?? "", /^rabbitmq:3(\.\d+)*-management$/);
  assert.deepEqual(broker.ports, ["127.0.0.1:5672:5672", "127.0.0.1:15672:15672"]);
  assert.equal(broker.hostname, BROKER_SERVICE, "a fixed node name keeps the volume's data");
  assert.deepEqual(broker.volumes, ["rabbitmq_data:/var/lib/rabbitmq"]);
  assert.equal(broker.restart, "unless-stopped");
  const test = broker.healthcheck?.test ?? [];
  assert.equal(test[0], "CMD");
  assert.equal(test[1], "rabbitmq-diagnostics");
});

Deno.test("each service is built from the Dockerfile for itself and publishes its port", async (t) => {
  for (const service of SERVICES) {
    await t.step(service, () => {
      const port = String(DEFAULT_PORTS[service]);
      const entry = app(service);
      assert.equal(entry.build?.context, ".");
      assert.equal(entry.build?.dockerfile ?? "Dockerfile", "Dockerfile");
      assert.deepEqual(entry.build?.args, { SERVICE: service, PORT: port });
      assert.deepEqual(entry.ports, [`127.0.0.1:${port}:${port}`]);
      assert.equal(String(entry.environment?.PORT), port);
      assert.deepEqual(entry.healthcheck?.test, [
        "CMD",
        "curl",
        "-fsS",
        `http://127.0.0.1:${port}/health`,
      ]);
    });
  }
});

Deno.test("each service gets every setting shared/config.ts reads, with its defaults", async (t) => {
  for (const service of SERVICES) {
    await t.step(service, () => {
      const env = app(service).environment ?? {};
      assert.deepEqual(Object.keys(env).sort(), Object.keys(ENV_DEFAULTS).sort());
      assert.equal(env.AMQP_URL, `amqp://guest:guest@${BROKER_SERVICE}:5672`);
      assert.equal(env.HOST, "0.0.0.0");
      assert.equal(env.DATA_DIR, CONTAINER_DATA_DIR, "the folder the binary may write");
      // The rest follow shared/config.ts unless the shell or a .env file overrides them.
      const fixed = ["AMQP_URL", "HOST", "PORT", "DATA_DIR"];
      for (const [name, fallback] of Object.entries(ENV_DEFAULTS)) {
        if (fixed.includes(name)) continue;
        assert.equal(env[name], `\${${name}:-${fallback}}`, name);
      }
      const resolved = Object.fromEntries(
        Object.entries(env).map(([name, value]) => [name, resolveDefault(value)]),
      );
      const config = loadConfig(service, resolved);
      assert.equal(config.port, DEFAULT_PORTS[service]);
      assert.equal(config.dataDir, CONTAINER_DATA_DIR);
    });
  }
});

Deno.test("each service waits for a healthy broker, restarts unless stopped, stops gracefully", () => {
  for (const service of SERVICES) {
    const entry = app(service);
    assert.deepEqual(entry.depends_on, { [BROKER_SERVICE]: { condition: "service_healthy" } });
    assert.equal(entry.restart, "unless-stopped");
    const grace = seconds(entry.stop_grace_period ?? "10s");
    const shutdown = Number(resolveDefault(entry.environment?.SHUTDOWN_TIMEOUT_MS ?? "")) / 1000;
    assert.ok(grace > shutdown, `stop_grace_period ${grace} s must exceed ${shutdown} s`);
  }
});

Deno.test("each service keeps its SQLite data on a named volume of its own", () => {
  const mounts = SERVICES.map((service) => app(service).volumes);
  assert.deepEqual(mounts, SERVICES.map((s) => [`${s}_data:${CONTAINER_DATA_DIR}`]));
  assert.deepEqual(
    Object.keys(compose.volumes ?? {}).sort(),
    ["rabbitmq_data", ...SERVICES.map((s) => `${s}_data`)].sort(),
  );
});

/** The Dockerfile's instructions, continuation lines joined, comments dropped. */
async function dockerfile(): Promise<{ op: string; args: string }[]> {
  const text = await Deno.readTextFile(join(ROOT, "Dockerfile"));
  return text.replace(/\\\n/g, " ").split("\n")
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith("#"))
    .map((line) => {
      const [op, ...rest] = line.split(/\s+/);
      return { op: op.toUpperCase(), args: rest.join(" ") };
    });
}

Deno.test("the Dockerfile compiles on a pinned Deno 2 image and runs unprivileged", async () => {
  const steps = await dockerfile();
  const froms = steps.filter((s) => s.op === "FROM").map((s) => s.args);
  assert.equal(froms.length, 2, "a build stage and a runtime stage");
  assert.match(froms[0], /^denoland\/deno:2\.\d+\.\d+ AS build$/);
  assert.match(froms[1], /^(debian:bookworm-slim|gcr\.io\/distroless\/cc\S*)$/);

  const runtime = steps.slice(steps.findLastIndex((s) => s.op === "FROM"));
  const args = (op: string) => runtime.filter((s) => s.op === op).map((s) => s.args);
  assert.deepEqual(args("EXPOSE"), ["${PORT}"]);
  assert.ok(args("ARG").includes("PORT") && args("ARG").includes("SERVICE"));
  const user = args("USER");
  assert.equal(user.length, 1);
  assert.doesNotMatch(user[0], /^(root|0)(:|$)/, "runs as a non-root user");
  assert.match(args("HEALTHCHECK").join(), /CMD .*http:\/\/127\.0\.0\.1:\$\{PORT\}\/health/);
  assert.match(args("ENV").join(" "), new RegExp(`DATA_DIR=${CONTAINER_DATA_DIR}( |$)`));
  assert.deepEqual(args("VOLUME"), [`["${CONTAINER_DATA_DIR}"]`]);
  assert.deepEqual(args("COPY"), ["--from=build /out/${SERVICE} /usr/local/bin/campus-service"]);
  assert.deepEqual(args("ENTRYPOINT"), ['["/usr/local/bin/campus-service"]']);

  const build = steps.filter((s) => s.op === "RUN").map((s) => s.args).join("\n");
  assert.match(build, /deno install --frozen/);
  assert.match(
    build,
    new RegExp(`deno task compile --only "\\$SERVICE" --out /out --data-dir ${CONTAINER_DATA_DIR}`),
  );
  for (const step of steps) {
    assert.doesNotMatch(step.args, /(^|\s)(-A|--allow-all)(\s|$)/, `${step.op} ${step.args}`);
  }
});

Deno.test(".dockerignore keeps history, local data and binaries out of the build", async () => {
  const lines = (await Deno.readTextFile(join(ROOT, ".dockerignore"))).split("\n")
    .map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));
  for (const entry of [".git", "data", "dist", "**/*.db", "**/node_modules"]) {
    assert.ok(lines.includes(entry), `.dockerignore lacks ${entry}`);
  }
  for (const needed of ["shared", "services", "tools", "deno.json", "deno.lock"]) {
    assert.ok(!lines.includes(needed), `.dockerignore must not exclude ${needed}`);
  }
});
