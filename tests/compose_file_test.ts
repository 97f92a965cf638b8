/**
 * compose.yaml, the Dockerfile and .dockerignore, checked by parsing against shared/runtime/config.ts and
 * tools/: the container deployment must agree with what the services read and with the
 * permissions the services run with. The images themselves run in tests/compose/.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { parse } from "yaml";
import { DEFAULT_PORTS, ENV_DEFAULTS, loadConfig, type ServiceName } from "@campus/shared/config";
import { compileArgs, CONTAINER_DATA_DIR } from "../tools/compile.ts";
import { servicePermissions, sourceEntryScript, sourceRunArgs } from "../tools/service_runtime.ts";
import { BROKER_SERVICE, composeService, HOST_PORT_VARIABLES } from "./compose_backend.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const SERVICES = Object.keys(DEFAULT_PORTS) as ServiceName[];

interface ComposeService {
  image?: string;
  hostname?: string;
  build?: {
    context?: string;
    dockerfile?: string;
    target?: string;
    args?: Record<string, string>;
  };
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
  assert.deepEqual(broker.ports, [
    `127.0.0.1:\${${HOST_PORT_VARIABLES.amqp}:-5672}:5672`,
    `127.0.0.1:\${${HOST_PORT_VARIABLES.management}:-15672}:15672`,
  ]);
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
      assert.equal(entry.build?.target, "${SERVICE_TARGET:-compiled}");
      assert.deepEqual(entry.build?.args, { SERVICE: service, PORT: port });
      // The host port comes from the environment; inside the network it is the default.
      assert.deepEqual(entry.ports, [
        `127.0.0.1:\${${HOST_PORT_VARIABLES[service]}:-${port}}:${port}`,
      ]);
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

Deno.test("each service gets every setting shared/runtime/config.ts reads, with its defaults", async (t) => {
  for (const service of SERVICES) {
    await t.step(service, () => {
      const env = app(service).environment ?? {};
      assert.deepEqual(Object.keys(env).sort(), Object.keys(ENV_DEFAULTS).sort());
      assert.equal(env.AMQP_URL, `amqp://guest:guest@${BROKER_SERVICE}:5672`);
      assert.equal(env.HOST, "0.0.0.0");
      assert.equal(env.DATA_DIR, CONTAINER_DATA_DIR, "the folder the binary may write");
      assert.equal(env.INVENTORY_URL, "http://inventory_service:5002", "the in-network address");
      // One database per service: a variable of its own, SQLite on the volume when unset.
      assert.equal(env.DATABASE_URL, `\${${service.toUpperCase()}_DATABASE_URL:-}`);
      // The rest follow shared/runtime/config.ts unless the shell or a .env file overrides them.
      const fixed = ["AMQP_URL", "HOST", "PORT", "DATA_DIR", "INVENTORY_URL", "DATABASE_URL"];
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

/** One instruction of the Dockerfile. */
interface Step {
  op: string;
  args: string;
}

/** A stage of the Dockerfile: its `FROM` image, its name and its instructions. */
interface Stage {
  from: string;
  name: string;
  steps: Step[];
}

const DOCKERFILE = await Deno.readTextFile(join(ROOT, "Dockerfile"));

/** The Dockerfile's stages, continuation lines joined, comments dropped. */
function stages(): Stage[] {
  const steps = DOCKERFILE.replace(/\\\n/g, " ").split("\n")
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith("#"))
    .map((line) => {
      const [op, ...rest] = line.split(/\s+/);
      return { op: op.toUpperCase(), args: rest.join(" ") };
    });
  const result: Stage[] = [];
  for (const step of steps) {
    if (step.op === "FROM") {
      const [from, as, name] = step.args.split(" ");
      assert.equal(as?.toUpperCase(), "AS", `every stage is named: FROM ${step.args}`);
      result.push({ from, name, steps: [] });
    } else {
      assert.ok(result.length, `${step.op} before the first FROM`);
      result.at(-1)!.steps.push(step);
    }
  }
  return result;
}

function stage(name: string): Stage {
  const found = stages().find((s) => s.name === name);
  assert.ok(found, `the Dockerfile has no stage ${name}`);
  return found;
}

const args = (s: Stage, op: string) => s.steps.filter((step) => step.op === op).map((x) => x.args);

Deno.test("the Dockerfile builds with the legacy builder: no frontend to fetch", () => {
  assert.doesNotMatch(DOCKERFILE, /^#\s*syntax\s*=/im);
  const names = stages().map((s) => s.name);
  // The legacy builder runs every stage above the target: `source` must not need `build`,
  // whose `deno compile` downloads the Deno runtime.
  assert.ok(names.indexOf("source") < names.indexOf("build"), names.join(", "));
  assert.equal(names.at(-1), "compiled", "compiled is the default target");
});

Deno.test("both targets run unprivileged, with a healthcheck, /data and the service as PID 1", () => {
  const runtime = stage("runtime");
  assert.match(runtime.from, /^debian:bookworm-slim$/);
  assert.deepEqual(args(runtime, "EXPOSE"), ["${PORT}"]);
  assert.deepEqual(args(runtime, "ARG"), ["SERVICE", "PORT"]);
  const user = args(runtime, "USER");
  assert.equal(user.length, 1);
  assert.doesNotMatch(user[0], /^(root|0)(:|$)/, "runs as a non-root user");
  assert.match(
    args(runtime, "HEALTHCHECK").join(),
    /CMD .*http:\/\/127\.0\.0\.1:\$\{PORT\}\/health/,
  );
  assert.match(args(runtime, "ENV").join(" "), new RegExp(`DATA_DIR=${CONTAINER_DATA_DIR}( |$)`));
  assert.deepEqual(args(runtime, "VOLUME"), [`["${CONTAINER_DATA_DIR}"]`]);
  // Exec form: no shell in between, the service gets the container's SIGTERM.
  assert.deepEqual(args(runtime, "ENTRYPOINT"), ['["/usr/local/bin/campus-service"]']);

  for (const target of ["source", "compiled"]) {
    const s = stage(target);
    assert.equal(s.from, "runtime", `${target} builds on the shared runtime stage`);
    // Only files and settings are added: user, healthcheck and entry point stay the runtime's.
    for (const step of s.steps) {
      assert.ok(["ARG", "ENV", "COPY"].includes(step.op), `${target}: ${step.op} ${step.args}`);
    }
    const entry = args(s, "COPY").filter((a) => a.endsWith(" /usr/local/bin/campus-service"));
    assert.equal(entry.length, 1, `${target} installs the entry program`);
  }
});

Deno.test("the source target runs deno on dependencies cached at build time", () => {
  const deps = stage("deps");
  assert.match(deps.from, /^denoland\/deno:2\.\d+\.\d+$/);
  const install = args(deps, "RUN").join("\n");
  assert.match(install, /deno install --frozen/);
  assert.match(install, /deno cache --frozen services\/\*\/main\.ts/);
  assert.match(
    args(stage("source-entry"), "RUN").join("\n"),
    /deno run --allow-write=\/out tools\/source_entry\.ts --service "\$SERVICE" --out \/out\/campus-service/,
  );
  const source = stage("source");
  assert.ok(
    args(source, "COPY").includes(
      "--from=source-entry /out/campus-service /usr/local/bin/campus-service",
    ),
  );
  assert.ok(args(source, "COPY").includes("--from=deps /deno-dir /deno-dir"));
  assert.match(args(source, "ENV").join(" "), /DENO_DIR=\/deno-dir/);
});

Deno.test("the compiled target is the deno compile binary of deno task compile", () => {
  assert.equal(stage("build").from, "deps");
  assert.match(
    args(stage("build"), "RUN").join("\n"),
    new RegExp(`deno task compile --only "\\$SERVICE" --out /out --data-dir ${CONTAINER_DATA_DIR}`),
  );
  assert.deepEqual(args(stage("compiled"), "COPY"), [
    "--from=build /out/${SERVICE} /usr/local/bin/campus-service",
  ]);
});

Deno.test("both targets carry the permissions of tools/service_runtime.ts, and no others", () => {
  const permissions = servicePermissions(CONTAINER_DATA_DIR);
  const run = sourceRunArgs("/app", "order", CONTAINER_DATA_DIR);
  assert.deepEqual(run.slice(0, 2), ["run", "--cached-only"]);
  assert.deepEqual(run.slice(2, -1), permissions);
  assert.equal(run.at(-1), "/app/services/order/main.ts");
  const compiled = compileArgs("order", "/out/order", { dataDir: CONTAINER_DATA_DIR });
  for (const flag of permissions) assert.ok(compiled.includes(flag), `compile has ${flag}`);
  const script = sourceEntryScript("/usr/local/bin/deno", "/app", "order", CONTAINER_DATA_DIR);
  const exec = script.split("\n").find((line) => line.startsWith("exec "));
  assert.equal(
    exec,
    `exec ${["/usr/local/bin/deno", ...run].map((a) => `'${a}'`).join(" ")} "$@"`,
    "exec: deno replaces the shell and is PID 1",
  );
  // The permissions are written in one place, not in the Dockerfile.
  assert.doesNotMatch(DOCKERFILE, /--allow-(net|env|read)|(^|\s)(-A|--allow-all)(\s|$)/m);
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
