/**
 * A private RabbitMQ node in a temporary folder, for tests, the benchmark and `deno task dev`
 * on machines where `rabbitmq-server` is installed but no broker answers. It listens on
 * 127.0.0.1 only: AMQP, the management UI and the Erlang distribution port.
 * @module
 */
import { join } from "node:path";
import { appendTo } from "./process_log.ts";

/** A private broker node that can be stopped and started again with its data kept. */
export interface BrokerNode {
  /** `amqp://guest:guest@127.0.0.1:<port>`. */
  url: string;
  port: number;
  /** Erlang node name, for `rabbitmqctl -n`. */
  node: string;
  /** Folder holding its data and logs. */
  dir: string;
  /** `http://localhost:<port>` of the management UI, when the node serves it. */
  managementUrl?: string;
  /** Starts the node (again) and waits until it accepts AMQP connections (and serves its UI). */
  start(): Promise<void>;
  /** Stops the node cleanly; durable queues and persistent messages survive. */
  stop(): Promise<void>;
  /** Operating-system pid of the running node (its Erlang VM), or undefined when stopped. */
  pid(): Promise<number | undefined>;
  /** Runs `rabbitmqctl -n <node> ...args` (policies, alarms, queue listings); returns stdout. */
  ctl(...args: string[]): Promise<string>;
  /** Stops the node and deletes its folder. */
  dispose(): Promise<void>;
}

/** True when `rabbitmq-server` can be run from PATH. */
export function canStartBrokerNode(): boolean {
  return which("rabbitmq-server") !== undefined && which("rabbitmqctl") !== undefined;
}

/**
 * A TCP port nobody listens on right now, and not handed out before by this process: the
 * kernel may give a port it just freed again (one stack in a hundred of 14 ports had two
 * alike), and a stack whose two processes share a port has one of them fail to start while the
 * other answers in its place.
 */
export function freePort(): number {
  if (handedOut.size >= MAX_REMEMBERED_PORTS) handedOut.clear();
  while (true) {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const { port } = listener.addr as Deno.NetAddr;
    listener.close();
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
}

/** Ports {@linkcode freePort} gave; forgotten past a bound, long after their stacks ended. */
const handedOut = new Set<number>();
const MAX_REMEMBERED_PORTS = 4_096;

/**
 * Whether process `pid` holds a socket listening on TCP `port`, from Linux's `/proc`: a start
 * that waits for a process to answer on its port must not take another process's answer for
 * it. True where `/proc` cannot tell (another system).
 */
export async function listensOn(pid: number, port: number): Promise<boolean> {
  let table: string;
  try {
    table = await Deno.readTextFile(`/proc/${pid}/net/tcp`) +
      await Deno.readTextFile(`/proc/${pid}/net/tcp6`).catch(() => "");
  } catch {
    return true;
  }
  // Columns: sl, local address (hex ip:port), remote address, state (0A: listening), …, inode.
  const local = `:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  const inodes = new Set(
    table.split("\n").map((line) => line.trim().split(/\s+/))
      .filter((columns) => columns[1]?.endsWith(local) && columns[3] === "0A")
      .map((columns) => `socket:[${columns[9]}]`),
  );
  if (inodes.size === 0) return false;
  for await (const fd of Deno.readDir(`/proc/${pid}/fd`)) {
    const target = await Deno.readLink(`/proc/${pid}/fd/${fd.name}`).catch(() => "");
    if (inodes.has(target)) return true;
  }
  return false;
}

/** Settings of {@linkcode createBrokerNode}. */
export interface BrokerNodeOptions {
  /** AMQP port; a free one when left out. */
  port?: number;
  /** Enables the management plugin (UI and HTTP API, guest/guest) on this port. */
  managementPort?: number;
}

/** Creates a private node (not yet started), on `port` or a free one. */
export async function createBrokerNode(
  { port = freePort(), managementPort }: BrokerNodeOptions = {},
): Promise<BrokerNode> {
  const dir = await Deno.makeTempDir({ prefix: "campus-rabbit-" });
  const distPort = freePort();
  const node = `campus-${port}@localhost`;
  const management = managementPort !== undefined;
  await Deno.writeTextFile(
    join(dir, "enabled_plugins"),
    management ? "[rabbitmq_management].\n" : "[].\n",
  );
  // The system config pins the listener to 5672, so the node gets a config file of its own.
  await Deno.writeTextFile(
    join(dir, "rabbitmq.conf"),
    `listeners.tcp.local = 127.0.0.1:${port}\nloopback_users = none\n` +
      (management
        ? `management.tcp.ip = 127.0.0.1\nmanagement.tcp.port = ${managementPort}\n`
        : ""),
  );
  // rabbitmq-server drops root for the rabbitmq user, which must own the folder.
  if (Deno.uid() === 0) await run("chown", ["-R", "rabbitmq:rabbitmq", dir]);
  const env = {
    RABBITMQ_NODENAME: node,
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(distPort),
    RABBITMQ_CONFIG_FILE: join(dir, "rabbitmq.conf"),
    RABBITMQ_MNESIA_BASE: join(dir, "mnesia"),
    RABBITMQ_LOG_BASE: join(dir, "log"),
    RABBITMQ_FEATURE_FLAGS_FILE: join(dir, "feature_flags"),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, "enabled_plugins"),
    // Erlang distribution (how rabbitmqctl and cluster peers reach the node) on loopback too,
    // and the port mapper when this node is the one that starts it.
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: "-kernel inet_dist_use_interface {127,0,0,1}",
    ERL_EPMD_ADDRESS: "127.0.0.1",
  };
  let child: Deno.ChildProcess | undefined;

  const self: BrokerNode = {
    url: `amqp://guest:guest@127.0.0.1:${port}`,
    port,
    node,
    dir,
    managementUrl: management ? `http://localhost:${managementPort}` : undefined,
    async start() {
      if (await listening(port)) return;
      const up = async () =>
        await listening(port) && (!management || await listening(managementPort));
      child = new Deno.Command("rabbitmq-server", {
        env,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      appendTo(join(dir, "server.out"), child.stdout).catch(() => {});
      appendTo(join(dir, "server.out"), child.stderr).catch(() => {});
      const exited = child.status.then((s) => s);
      const deadline = Date.now() + 60_000;
      while (!(await up())) {
        const status = await Promise.race([exited, delay(100)]);
        if (status) {
          const tail = (await Deno.readTextFile(join(dir, "server.out"))).slice(-2000);
          throw new Error(`rabbitmq-server for ${node} exited with ${status.code}:\n${tail}`);
        }
        if (Date.now() > deadline) {
          throw new Error(`rabbitmq-server ${node} did not listen in 60 s`);
        }
      }
    },
    async stop() {
      if (!child) return;
      await run("rabbitmqctl", ["-n", node, "shutdown"]).catch(() => {});
      await child.status;
      child = undefined;
    },
    async pid() {
      if (!child) return undefined;
      const out = await run("rabbitmqctl", ["-n", node, "eval", "list_to_integer(os:getpid())."])
        .catch(() => "");
      const pid = Number(out.trim());
      return Number.isInteger(pid) && pid > 0 ? pid : undefined;
    },
    ctl: (...args) => run("rabbitmqctl", ["-n", node, ...args]),
    async dispose() {
      await self.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
  return self;
}

async function listening(port: number): Promise<boolean> {
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.close();
    return true;
  } catch {
    return false;
  }
}

async function run(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdin: "null", stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return text;
}

function which(cmd: string): string | undefined {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    try {
      const path = join(dir, cmd);
      if (Deno.statSync(path).isFile) return path;
    } catch {
      // not in this folder
    }
  }
  return undefined;
}

function delay(ms: number): Promise<undefined> {
  return new Promise((resolve) => setTimeout(() => resolve(undefined), ms));
}
