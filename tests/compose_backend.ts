/**
 * The Compose backend of the stack controller (`STACK=compose`): the broker and the services are
 * the containers of compose.yaml, driven with `docker compose -p <project> stop|start|kill|restart`.
 * Each stack starts from empty volumes, publishes its ports on free host ports unless
 * `ORDER_PORT` and the like name them, and is removed with `docker compose down -v`.
 * @module
 */
import { join } from "node:path";
import { DEFAULT_PORTS } from "@campus/shared/config";
import { errorText } from "@campus/shared/log";
import { freePort } from "../tools/broker_node.ts";
import { answers, waitFor } from "./poll.ts";
import type { ServiceExit, ServiceName, StackBackend, StackOptions } from "./stack_backend.ts";

/** Settings of a Compose stack. */
export interface ComposeOptions extends StackOptions {
  /** Compose project name (`-p`); the default keeps test stacks apart from `campus-food`. */
  project?: string;
  /** The compose file; the repository's compose.yaml by default. */
  file?: string;
  /** PATH for the `docker` program; the process's own otherwise. */
  path?: string;
  /** Build the images before starting (`up --build`); true by default. */
  build?: boolean;
  /** How long to wait for a container to become healthy or to stop. */
  timeoutMs?: number;
}

/** Compose service of a service: `order` → `order_service`. */
export function composeService(service: ServiceName): string {
  return `${service}_service`;
}

/** The broker's Compose service. */
export const BROKER_SERVICE = "rabbitmq";

/** The project a test stack runs as unless told otherwise. */
export const DEFAULT_TEST_PROJECT = "campus-food-test";

/** The variables compose.yaml reads the host ports from, by what they publish. */
export const HOST_PORT_VARIABLES = {
  order: "ORDER_PORT",
  inventory: "INVENTORY_PORT",
  notification: "NOTIFICATION_PORT",
  amqp: "RABBITMQ_PORT",
  management: "RABBITMQ_UI_PORT",
} as const;

/** The broker's ports inside the project's network. */
const AMQP_PORT = 5672;
const MANAGEMENT_PORT = 15672;

/** A stack service or the broker. */
export type ComposeTarget = ServiceName | "broker";

/** What the Compose backend does beyond {@linkcode StackBackend}: the rest of `docker compose`. */
export interface ComposeBackend extends StackBackend {
  /** The Compose project name (`-p`). */
  readonly project: string;
  /** Base URL of RabbitMQ's management HTTP API on the host, e.g. `http://127.0.0.1:15672`. */
  readonly managementUrl: string;
  /** `docker compose restart` of a service (waits for `/health`) or of the broker (healthy). */
  restart(target: ComposeTarget): Promise<void>;
  /** `docker compose down`, keeping the volumes unless `volumes` is true (`down -v`). */
  down(options?: { volumes?: boolean }): Promise<void>;
  /** `docker compose up -d --wait` of the broker and every service, on the images already built. */
  up(): Promise<void>;
  /** The container's id and start time: it changes whenever the container is (re)started. */
  startedAt(target: ComposeTarget): Promise<string | undefined>;
  /** Runs `docker compose -p <project> -f <file>` with `args`; throws when it fails. */
  compose(args: string[]): Promise<{ stdout: string; stderr: string }>;
}

/** True when `backend` drives compose.yaml's containers. */
export function isComposeBackend(backend: StackBackend): backend is ComposeBackend {
  return "project" in backend && "managementUrl" in backend;
}

const ROOT = new URL("..", import.meta.url).pathname;
const SERVICES = Object.keys(DEFAULT_PORTS) as ServiceName[];
/** Settings the local backend gives every service too, so suites behave alike on both. */
// AUTH_SECRET is cleared, as the local stack does: a secret exported in the shell would lock the
// suites' unauthenticated clients out. A suite that wants auth sets it in its own env.
const TEST_ENV = { RETRY_DELAY_MS: "200", AUTH_SECRET: "" };

/** One container as `docker compose ps --format json` lists it. */
interface ContainerState {
  ID?: string;
  Service?: string;
  State?: string;
  Health?: string;
  ExitCode?: number;
}

/** Result of one `docker compose` call. */
interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Starts compose.yaml's broker and services (less `without`) and returns their controller. */
export async function startComposeBackend(options: ComposeOptions = {}): Promise<ComposeBackend> {
  const project = options.project ?? DEFAULT_TEST_PROJECT;
  const file = options.file ?? join(ROOT, "compose.yaml");
  const timeoutMs = options.timeoutMs ?? 120_000;
  await assertPassedThrough(file, Object.keys(options.env ?? {}));
  const env: Record<string, string> = { ...TEST_ENV, ...hostPorts(), ...options.env };
  if (options.path !== undefined) env.PATH = options.path;

  const docker = async (args: string[], { check = true } = {}): Promise<Run> => {
    let out: Deno.CommandOutput;
    try {
      out = await new Deno.Command("docker", {
        args,
        env,
        cwd: ROOT,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
    } catch (err) {
      throw new Error(`Cannot run docker ${args.join(" ")}: ${err}`, { cause: err });
    }
    const run = {
      code: out.code,
      stdout: new TextDecoder().decode(out.stdout),
      stderr: new TextDecoder().decode(out.stderr),
    };
    if (check && run.code !== 0) {
      throw new Error(
        `docker ${args.join(" ")} failed with exit code ${run.code}:\n${run.stderr.trim()}`,
      );
    }
    return run;
  };
  const compose = (args: string[], opts?: { check?: boolean }) =>
    docker(["compose", "-p", project, "-f", file, ...args], opts);

  const version = await docker(["compose", "version"], { check: false })
    .catch((err) => ({ code: -1, stdout: "", stderr: errorText(err) }));
  if (version.code !== 0) {
    throw new Error(
      "STACK=compose needs Docker Compose v2 (`docker compose`) and a Docker engine; " +
        `\`docker compose version\` failed: ${(version.stderr || version.stdout).trim()}`,
    );
  }

  const state = async (name: string): Promise<ContainerState | undefined> => {
    const { stdout } = await compose(["ps", "--all", "--format", "json", name]);
    return parsePs(stdout).find((c) => c.Service === name);
  };
  const inspect = async (id: string, format: string): Promise<string> =>
    (await docker(["inspect", "--format", format, id])).stdout;
  const address = async (name: string, port: number): Promise<string> => {
    const { stdout } = await compose(["port", name, String(port)]);
    return loopback(stdout);
  };

  const urls = new Map<ServiceName, string>();
  /** When the backend last started each service's container, in Docker's clock. */
  const startedAt = new Map<ServiceName, string>();
  /** Notes when a service's container (re)started, to tell later exits from earlier ones. */
  const markStarted = async (service: ServiceName) => {
    const id = (await state(composeService(service)))?.ID;
    if (id) startedAt.set(service, (await inspect(id, "{{.State.StartedAt}}")).trim());
  };
  /** Waits until a running service answers `/health` on its published port. */
  const awaitHealth = async (service: ServiceName) => {
    const name = composeService(service);
    urls.delete(service);
    await waitFor(async () => {
      if (!urls.has(service)) {
        const published = await address(name, DEFAULT_PORTS[service]).catch(() => undefined);
        if (!published) return false;
        urls.set(service, `http://${published}`);
      }
      return await answers(`${urls.get(service)}/health`);
    }, { timeoutMs, what: `${name} to answer /health` });
    await markStarted(service);
  };
  const awaitBrokerHealthy = async () => {
    await waitFor(async () => (await state(BROKER_SERVICE))?.Health === "healthy", {
      timeoutMs,
      what: `${BROKER_SERVICE} to be healthy`,
    });
  };
  const nameOf = (target: ComposeTarget) =>
    target === "broker" ? BROKER_SERVICE : composeService(target);
  let amqpUrl = "";
  let managementUrl = "";
  const backend: ComposeBackend = {
    project,
    get amqpUrl() {
      return amqpUrl;
    },
    get managementUrl() {
      return managementUrl;
    },
    controlsBroker: true,
    baseUrl: (service) =>
      urls.get(service) ?? `http://127.0.0.1:${env[HOST_PORT_VARIABLES[service]]}`,
    async start(service) {
      const name = composeService(service);
      const container = await state(name);
      // A container that runs, or that the restart policy is bringing back, needs no start.
      if (container?.State !== "running" && container?.State !== "restarting") {
        // `docker compose start` first waits for the broker to be healthy (depends_on); while the
        // broker is down on purpose, start the container itself, as the local backend would.
        const brokerUp = (await state(BROKER_SERVICE))?.State === "running";
        const id = brokerUp ? undefined : container?.ID;
        await (id ? docker(["start", id]) : compose(["start", name]));
      }
      await awaitHealth(service);
    },
    async stop(service) {
      // Compose sends SIGTERM and waits up to stop_grace_period for a graceful exit.
      await compose(["stop", composeService(service)]);
    },
    async kill(service) {
      await compose(["kill", "-s", "SIGKILL", composeService(service)]);
      await waitFor(async () => (await state(composeService(service)))?.State !== "running", {
        timeoutMs,
        what: `${composeService(service)} to stop running`,
      });
    },
    async stopBroker() {
      await compose(["stop", BROKER_SERVICE]);
    },
    async startBroker() {
      await compose(["start", BROKER_SERVICE]);
      await awaitBrokerHealthy();
    },
    async restart(target) {
      await compose(["restart", nameOf(target)]);
      await (target === "broker" ? awaitBrokerHealthy() : awaitHealth(target));
    },
    async down({ volumes = false } = {}) {
      await compose(["down", ...(volumes ? ["-v"] : [])]);
      urls.clear();
    },
    async up() {
      await compose(["up", "-d", "--wait", BROKER_SERVICE, ...SERVICES.map(composeService)]);
      await learnAddresses(SERVICES);
    },
    async startedAt(target) {
      const id = (await state(nameOf(target)))?.ID;
      if (!id) return undefined;
      return `${id}@${(await inspect(id, "{{.State.StartedAt}}")).trim()}`;
    },
    compose: (args) => compose(args),
    async logs(service) {
      const run = await compose(
        ["logs", "--no-color", "--no-log-prefix", composeService(service)],
        { check: false },
      );
      return run.stdout + run.stderr;
    },
    async exitStatus(service) {
      const container = await state(composeService(service));
      if (!container?.ID || container.State === "created") return undefined;
      if (container.State !== "running") return exitOf(container.ExitCode ?? 0);
      // Running, yet it may have exited on its own since it was started and been brought back
      // by the restart policy; Docker's events still hold that exit and its code.
      const from = startedAt.get(service);
      if (!from) return undefined;
      const { stdout } = await docker([
        "events",
        ...["--since", from, "--until", unixNow()],
        ...["--filter", `container=${container.ID}`, "--filter", "event=die"],
        ...["--format", "{{.Actor.Attributes.exitCode}}"],
      ]);
      const code = stdout.trim().split("\n").filter(Boolean).at(-1);
      return code === undefined ? undefined : exitOf(Number(code));
    },
    async pid(target) {
      const id = (await state(nameOf(target)))?.ID;
      if (!id) return undefined;
      const pid = Number((await inspect(id, "{{.State.Pid}}")).trim());
      return Number.isInteger(pid) && pid > 0 ? pid : undefined;
    },
    async dispose() {
      if (Deno.env.get("KEEP_STACK")) return;
      await compose(["down", "-v", "--remove-orphans"], { check: false });
    },
  };
  /** Reads the host addresses Docker published the broker's and the services' ports on. */
  const learnAddresses = async (running: readonly ServiceName[]) => {
    amqpUrl = `amqp://guest:guest@${await address(BROKER_SERVICE, AMQP_PORT)}`;
    managementUrl = `http://${await address(BROKER_SERVICE, MANAGEMENT_PORT)}`;
    for (const service of running) {
      urls.set(service, `http://${await address(composeService(service), DEFAULT_PORTS[service])}`);
      await markStarted(service);
    }
  };

  const running = SERVICES.filter((s) => !options.without?.includes(s));
  const idle = SERVICES.filter((s) => options.without?.includes(s));
  const build = options.build === false ? [] : ["--build"];
  try {
    // Volumes left by an earlier run would carry its orders and stock into this one.
    await compose(["down", "-v", "--remove-orphans"]);
    await compose(["up", "-d", ...build, "--wait", BROKER_SERVICE, ...running.map(composeService)]);
    if (idle.length) await compose(["create", ...build, ...idle.map(composeService)]);
    await learnAddresses(running);
  } catch (err) {
    const logs = await compose(["logs", "--no-color", "--tail", "100"], { check: false })
      .then((run) => (run.stdout + run.stderr).slice(-6000), () => "");
    await backend.dispose();
    throw new Error(`${errorText(err)}\n--- docker compose logs ---\n${logs}`, { cause: err });
  }
  return backend;
}

/**
 * The host ports of a test stack: those `ORDER_PORT`, `RABBITMQ_PORT` and the like name, and a
 * free one for each that is unset, so a test stack never clashes with the machine's own broker
 * or another project.
 */
function hostPorts(): Record<string, string> {
  return Object.fromEntries(
    Object.values(HOST_PORT_VARIABLES).map((
      name,
    ) => [name, Deno.env.get(name) || String(freePort())]),
  );
}

/**
 * Throws a `TypeError` when a setting in `names` would not reach the containers: compose.yaml
 * passes on only the variables it names as `${NAME:-default}`.
 */
export async function assertPassedThrough(file: string, names: string[]): Promise<void> {
  const text = await Deno.readTextFile(file);
  const missing = names.filter((name) => !new RegExp(`\\$\\{${name}(:?-|\\})`).test(text));
  if (missing.length) {
    const names = missing.join(", ");
    throw new TypeError(
      `${file} does not pass ${names} to the services: add "NAME: \${NAME:-default}" to their ` +
        "environment",
    );
  }
}

/** Containers from `docker compose ps --format json`: a JSON array, or one object a line. */
function parsePs(text: string): ContainerState[] {
  const trimmed = text.trim();
  if (!trimmed) return [];
  if (trimmed.startsWith("[")) return JSON.parse(trimmed);
  return trimmed.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
}

/** `127.0.0.1:5001` from `docker compose port`; a wildcard host becomes the loopback address. */
function loopback(portOutput: string): string {
  const line = portOutput.trim().split("\n").at(-1) ?? "";
  const match = /^(.*):(\d+)$/.exec(line);
  if (!match) throw new Error(`docker compose port answered "${portOutput.trim()}"`);
  const host = ["0.0.0.0", "::", "[::]", ""].includes(match[1]) ? "127.0.0.1" : match[1];
  return `${host}:${match[2]}`;
}

const SIGNALS: Record<number, string> = {
  2: "SIGINT",
  6: "SIGABRT",
  9: "SIGKILL",
  11: "SIGSEGV",
  15: "SIGTERM",
};

/** Now as a Unix timestamp with nanoseconds, the form `docker events --until` takes. */
function unixNow(): string {
  const ms = Date.now();
  return `${Math.floor(ms / 1000)}.${String((ms % 1000) * 1_000_000).padStart(9, "0")}`;
}

/** A container's exit code as the local backend reports a process's: 137 is SIGKILL. */
function exitOf(code: number): ServiceExit {
  const signal = code > 128 ? SIGNALS[code - 128] : undefined;
  return signal ? { code, signal } : { code };
}
