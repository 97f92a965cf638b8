/**
 * `deno task dev` as a developer runs it, on a machine where no broker answers at AMQP_URL: it
 * starts its own RabbitMQ node with the management UI (guest/guest) and prints its address; when
 * the UI's port is taken it says so and runs without the UI. Everything it starts listens on
 * 127.0.0.1 only.
 */
import assert from "node:assert/strict";
import { SERVICES } from "@campus/shared/topology";
import { canStartBrokerNode, freePort } from "../tools/broker_node.ts";
import { answers, waitFor } from "./poll.ts";
import { WatchedProcess } from "./watched_process.ts";
import { INTEGRATION } from "./stack.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const GUEST = `Basic ${btoa("guest:guest")}`;

/** A running `deno task dev`, with everything it printed so far. */
interface Dev {
  ports: Record<string, number>;
  /** The AMQP port of dev's own node. */
  amqpPort: number;
  output(): string;
  stop(): Promise<Deno.CommandStatus>;
}

/** Starts `deno task dev` on free ports (AMQP, every service) with `env` added. */
async function startDev(env: Record<string, string>): Promise<Dev> {
  if (!canStartBrokerNode()) {
    throw new Error("This test needs rabbitmq-server: deno task dev starts its own node");
  }
  const dataDir = await Deno.makeTempDir({ prefix: "campus-dev-" });
  const ports = Object.fromEntries(SERVICES.map((s) => [s.name, freePort()]));
  const amqpPort = freePort();
  const dev = new WatchedProcess({
    args: ["task", "dev"],
    cwd: ROOT,
    env: {
      // Nothing listens on this port, so dev starts a node of its own there.
      AMQP_URL: `amqp://guest:guest@127.0.0.1:${amqpPort}`,
      DATA_DIR: dataDir,
      ...Object.fromEntries(
        SERVICES.map((s) => [`${s.name.toUpperCase()}_PORT`, `${ports[s.name]}`]),
      ),
      ...env,
    },
  });
  return {
    ports,
    amqpPort,
    output: () => dev.output(),
    async stop() {
      const ended = await dev.stop("SIGTERM", 60_000);
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
      return ended;
    },
  };
}

/** Waits until dev's order service answers `/health`, failing early if dev exited. */
async function waitForServices(dev: Dev): Promise<void> {
  for (const { name } of SERVICES) {
    await waitFor(() => answers(`http://127.0.0.1:${dev.ports[name]}/health`), {
      timeoutMs: 90_000,
      what: `${name} started by deno task dev to answer /health; dev printed:\n${
        dev.output().slice(-2000)
      }`,
    });
  }
}

Deno.test("deno task dev serves RabbitMQ's management UI", INTEGRATION, async (t) => {
  await t.step("its own node answers /api/overview as guest and dev prints where", async () => {
    const uiPort = freePort();
    const dev = await startDev({ RABBITMQ_UI_PORT: String(uiPort) });
    try {
      await waitForServices(dev);
      const overview = await waitFor(async () => {
        const res = await fetch(`http://127.0.0.1:${uiPort}/api/overview`, {
          headers: { authorization: GUEST },
        }).catch(() => undefined);
        if (res?.status !== 200) {
          await res?.body?.cancel();
          return undefined;
        }
        return await res.json() as { rabbitmq_version?: string; node?: string };
      }, { timeoutMs: 60_000, what: `GET /api/overview on :${uiPort} to answer 200` });
      assert.equal(typeof overview.rabbitmq_version, "string");
      assert.match(overview.node ?? "", /^campus-/, "the UI is the one of dev's own node");
      const order = `http://localhost:${dev.ports.order}`;
      assert.match(dev.output(), new RegExp(`Student page: ${order}/\n`), "the student page");
      assert.match(dev.output(), new RegExp(`Kitchen board: ${order}/board\n`), "the board");
      assert.match(
        dev.output(),
        new RegExp(`management UI: http://localhost:${uiPort} \\(log in as guest / guest\\)`),
      );
    } finally {
      const status = await dev.stop();
      assert.equal(status.code, 0, `Ctrl-C stops dev cleanly; it printed:\n${dev.output()}`);
    }
  });

  await t.step("with the UI's port taken it says so and runs without the UI", async () => {
    using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const uiPort = (taken.addr as Deno.NetAddr).port;
    const dev = await startDev({ RABBITMQ_UI_PORT: String(uiPort) });
    try {
      await waitForServices(dev);
      assert.match(dev.output(), new RegExp(`Port ${uiPort} is taken`));
      assert.doesNotMatch(dev.output(), /management UI: http/);
    } finally {
      const status = await dev.stop();
      assert.equal(status.code, 0, `Ctrl-C stops dev cleanly; it printed:\n${dev.output()}`);
    }
  });

  await t.step("the services, the broker and its UI listen on 127.0.0.1 only", async () => {
    const uiPort = freePort();
    const dev = await startDev({ RABBITMQ_UI_PORT: String(uiPort) });
    try {
      await waitForServices(dev);
      const ports = [...Object.values(dev.ports), dev.amqpPort, uiPort];
      await waitFor(() => answers(`http://127.0.0.1:${uiPort}/`), {
        timeoutMs: 60_000,
        what: `the management UI to answer on 127.0.0.1:${uiPort}`,
      });
      const listening = await listeningSockets();
      for (const port of ports) {
        const sockets = listening.filter((s) => s.port === port);
        assert.ok(
          sockets.length > 0,
          `something listens on :${port}: ${JSON.stringify(listening)}`,
        );
        for (const socket of sockets) {
          assert.ok(socket.loopback, `:${port} listens on ${socket.address}, not loopback only`);
        }
        using conn = await Deno.connect({ hostname: "127.0.0.1", port });
        assert.ok(conn, `127.0.0.1:${port} answers`);
      }
      // The same, seen from outside: another address of this machine is refused.
      const outside = Deno.networkInterfaces().find((i) =>
        i.family === "IPv4" && !i.address.startsWith("127.")
      );
      if (outside) {
        for (const port of ports) {
          await assert.rejects(
            Deno.connect({ hostname: outside.address, port }),
            Deno.errors.ConnectionRefused,
            `${outside.address}:${port} must refuse`,
          );
        }
      }
    } finally {
      const status = await dev.stop();
      assert.equal(status.code, 0, `Ctrl-C stops dev cleanly; it printed:\n${dev.output()}`);
    }
  });
});

/** A listening TCP socket of this machine, from /proc/net/tcp and tcp6. */
interface ListeningSocket {
  address: string;
  port: number;
  loopback: boolean;
}

/** Every listening TCP socket of this machine (Linux: /proc/net/tcp and /proc/net/tcp6). */
async function listeningSockets(): Promise<ListeningSocket[]> {
  const LISTEN = "0A";
  // 127.0.0.1, ::1 and 127.0.0.1 mapped into IPv6, as the kernel writes them (host byte order).
  const LOOPBACK = new Set([
    "0100007F",
    "00000000000000000000000001000000",
    "0000000000000000FFFF00000100007F",
  ]);
  const sockets: ListeningSocket[] = [];
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    const lines = (await Deno.readTextFile(table)).trim().split("\n").slice(1);
    for (const line of lines) {
      const [, local, , state] = line.trim().split(/\s+/);
      if (state !== LISTEN) continue;
      const [address, port] = local.split(":");
      sockets.push({ address, port: parseInt(port, 16), loopback: LOOPBACK.has(address) });
    }
  }
  return sockets;
}
