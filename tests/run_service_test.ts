/**
 * `deno task inventory` as a developer runs it: the service listens on 127.0.0.1, runs with
 * exactly the permissions its configuration calls for (its data folder, its variables, its own
 * address and broker), and stops cleanly on SIGTERM. With a `DATABASE_URL` naming a Unix socket
 * directory, it reaches PostgreSQL through that socket and may touch no other file.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import postgres from "postgres";
import { createPostgresDatabase, TEST_POSTGRES_URL } from "@campus/testing/store_contract";
import { canStartBrokerNode, createBrokerNode, freePort } from "../tools/broker_node.ts";
import { SERVICE_ENV } from "../tools/service_runtime.ts";
import { answers, waitFor } from "./poll.ts";
import { WatchedProcess } from "./watched_process.ts";
import { INTEGRATION } from "./stack.ts";

const ROOT = new URL("..", import.meta.url).pathname;

Deno.test("deno task inventory runs the service with least privilege", INTEGRATION, async () => {
  if (!canStartBrokerNode()) throw new Error("This test needs rabbitmq-server");
  const node = await createBrokerNode();
  const dir = await Deno.makeTempDir({ prefix: "campus-task-" });
  const dataDir = join(dir, "inventory");
  const port = freePort();
  try {
    await node.start();
    const task = new WatchedProcess({
      args: ["task", "-q", "inventory"],
      cwd: ROOT,
      // No HOST: the task chooses 127.0.0.1.
      env: { AMQP_URL: node.url, DATA_DIR: dataDir, PORT: String(port), HOST: "" },
    });
    try {
      await waitFor(() => answers(`http://127.0.0.1:${port}/ready`), {
        timeoutMs: 60_000,
        what: `deno task inventory to answer /ready on :${port}; it printed:\n${task.output()}`,
      });
      const flags = await waitFor(
        () => commandLineBelow(task.child.pid, "services/inventory/main.ts"),
        { what: "the service's process below the task" },
      );
      const permissions = flags.filter((f) => /^-(A$|-allow|-deny)/.test(f)).sort();
      assert.deepEqual(permissions, [
        `--allow-env=${SERVICE_ENV.join(",")}`,
        `--allow-net=127.0.0.1:${port},127.0.0.1:${node.port}`,
        `--allow-read=${dataDir}`,
        `--allow-write=${dataDir}`,
      ]);
      assert.ok(flags.includes("--no-prompt"), flags.join(" "));
    } finally {
      const ended = await task.stop("SIGTERM");
      assert.equal(ended.code, 0, `a graceful stop; it printed:\n${task.output().slice(-2000)}`);
    }
    assert.match(task.output(), /"msg":"stopped"/);
  } finally {
    await node.dispose();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

/** Where the test server's Unix socket lies (Debian's packages put it here). */
const SOCKET_DIR = Deno.env.get("TEST_POSTGRES_SOCKET_DIR") || "/var/run/postgresql";

Deno.test("deno task inventory reaches PostgreSQL over a Unix socket", INTEGRATION, async () => {
  if (!canStartBrokerNode()) throw new Error("This test needs rabbitmq-server");
  const socket = `${SOCKET_DIR}/.s.PGSQL.5432`;
  const found = await Deno.stat(socket).catch(() => undefined);
  if (!found?.isSocket) {
    throw new Error(`No PostgreSQL socket at ${socket} (set TEST_POSTGRES_SOCKET_DIR)`);
  }
  const database = await createPostgresDatabase();
  const name = new URL(database.url).pathname.slice(1);
  const admin = postgres(TEST_POSTGRES_URL, { max: 1, onnotice: () => {} });
  const node = await createBrokerNode();
  const dir = await Deno.makeTempDir({ prefix: "campus-task-" });
  const dataDir = join(dir, "inventory");
  const port = freePort();
  try {
    await node.start();
    const task = new WatchedProcess({
      args: ["task", "-q", "inventory"],
      cwd: ROOT,
      env: {
        AMQP_URL: node.url,
        DATA_DIR: dataDir,
        PORT: String(port),
        HOST: "",
        DATABASE_URL: `postgresql://postgres@/${name}?host=${SOCKET_DIR}`,
      },
    });
    try {
      await waitFor(() => answers(`http://127.0.0.1:${port}/ready`), {
        timeoutMs: 60_000,
        what: `the service on a socket to answer /ready on :${port}; it printed:\n${task.output()}`,
      });
      const stock = await (await fetch(`http://127.0.0.1:${port}/inventory`)).json();
      assert.ok(Object.keys(stock).length > 0, `the menu's stock, from PostgreSQL: ${stock}`);
      const flags = await waitFor(
        () => commandLineBelow(task.child.pid, "services/inventory/main.ts"),
        { what: "the service's process below the task" },
      );
      // The socket and nothing else beside the data folder and the service's own addresses.
      assert.ok(flags.includes(`--allow-read=${dataDir},${socket}`), flags.join(" "));
      assert.ok(flags.includes(`--allow-write=${dataDir},${socket}`), flags.join(" "));
      assert.ok(
        flags.includes(`--allow-net=127.0.0.1:${port},127.0.0.1:${node.port},unix:${socket}`),
        flags.join(" "),
      );
      // A session over a Unix socket has no client address.
      const sessions = await admin<{ client_addr: string | null }[]>`
        SELECT client_addr FROM pg_stat_activity
        WHERE datname = ${name} AND application_name LIKE 'inventory-%'`;
      assert.ok(sessions.length > 0, "the service's sessions on its database");
      assert.deepEqual(sessions.map((s) => s.client_addr), sessions.map(() => null));
    } finally {
      const ended = await task.stop("SIGTERM");
      assert.equal(ended.code, 0, `a graceful stop; it printed:\n${task.output().slice(-2000)}`);
    }
  } finally {
    await admin.end();
    await node.dispose();
    await database.drop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

/** The arguments of the process below `ancestor` (Linux /proc) whose command line has `part`. */
async function commandLineBelow(ancestor: number, part: string): Promise<string[] | undefined> {
  const parents = new Map<number, number>();
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const stat = await Deno.readTextFile(`/proc/${entry.name}/stat`).catch(() => "");
    // "pid (command) state ppid ...": the command may hold spaces and parentheses.
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    if (ppid) parents.set(Number(entry.name), ppid);
  }
  for (const pid of parents.keys()) {
    let up = parents.get(pid);
    while (up !== undefined && up !== ancestor) up = parents.get(up);
    if (up !== ancestor) continue;
    const args = (await Deno.readTextFile(`/proc/${pid}/cmdline`).catch(() => ""))
      .split("\0").filter(Boolean);
    if (args.some((a) => a.includes(part))) return args;
  }
  return undefined;
}
