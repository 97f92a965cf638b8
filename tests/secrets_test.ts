/**
 * Passwords never show: the services connect to the broker and to PostgreSQL with distinctive
 * passwords, run orders, dead letters and a broker outage, and neither a log line nor a `/ready`
 * body holds them; a service that cannot log in, cannot reach its broker or cannot reach its
 * database says why, without them.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { createPostgresDatabase } from "@campus/testing/store_contract";
import { SERVICE_NAMES, type ServiceName } from "@campus/shared/topology";
import { createBrokerNode, freePort } from "../tools/broker_node.ts";
import { serviceRunArgs } from "../tools/service_runtime.ts";
import { finalOrders, getJson, placeOrders, type Readiness } from "./client.ts";
import { waitFor } from "./poll.ts";
import { WatchedProcess } from "./watched_process.ts";
import { INTEGRATION, Stack } from "./stack.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const BROKER_PW = "Broker-Pw-Distinct-4711";
const DB_PW = "Distinctive-Pw-123";
const WRONG_BROKER_PW = "Wrong-Broker-Pw-0815";

/** Fails naming where a password showed, and the line it showed in. */
function assertNoPasswords(text: string, where: string): void {
  for (const password of [BROKER_PW, DB_PW, WRONG_BROKER_PW]) {
    const line = text.split("\n").find((l) => l.includes(password));
    assert.equal(line, undefined, `${where} shows the password ${password}`);
  }
}

Deno.test("a running system never shows its passwords", INTEGRATION, async (t) => {
  const stack = await Stack.start({
    store: "postgres",
    passwords: { broker: BROKER_PW, database: DB_PW },
    // Debug: the reconnection attempts and their errors are logged too.
    env: { TEST_FAULTS: "on", MAX_RETRIES: "0", LOG_LEVEL: "debug" },
  });
  const bodies: string[] = [];
  try {
    await t.step("orders, a dead letter and a long error message", async () => {
      const placed = await placeOrders(stack, [
        { item: "Coffee", qty: 1, student_id: "P1" },
        { item: "Coffee", qty: 1, student_id: "fault:permanent" },
        { item: "Coffee", qty: 1, student_id: "fault:verbose" },
      ]);
      await finalOrders(stack, placed.map((o) => o.order_id));
    });

    await t.step("a broker outage, seen in every log and /ready", async () => {
      await stack.stopBroker();
      for (const service of SERVICE_NAMES) {
        const ready = await waitFor(async () => {
          const answer = await getJson<Readiness["body"]>(stack.url(service, "/ready"));
          return answer.status === 503 && answer.body.error ? answer : undefined;
        }, { timeoutMs: 30_000, what: `${service} /ready to answer 503 with the broker down` });
        bodies.push(JSON.stringify(ready.body));
      }
      await stack.startBroker();
      for (const service of SERVICE_NAMES) {
        await waitFor(async () => (await getJson(stack.url(service, "/ready"))).status === 200, {
          timeoutMs: 60_000,
          what: `${service} to be ready again after the broker came back`,
        });
      }
    });

    await t.step("no log line and no /ready body holds a password", async () => {
      for (const [i, body] of bodies.entries()) assertNoPasswords(body, `/ready ${i}: ${body}`);
      for (const service of SERVICE_NAMES) {
        const log = await stack.logs(service);
        assert.match(log, /broker connection lost/, `${service} logged the outage`);
        assert.match(log, /"url":"amqp:\/\/campus:\*\*\*@127\.0\.0\.1:\d+"/, "the URL, masked");
        assert.match(log, /postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:5432\//, "the database too");
        assertNoPasswords(log, `${service}'s log`);
      }
    });
  } finally {
    await stack.dispose();
  }
});

/** A service run by hand, with all it printed. */
interface Run {
  url(path: string): string;
  output(): string;
  exited(): Deno.CommandStatus | undefined;
  stop(): Promise<void>;
}

function runService(service: ServiceName, env: Record<string, string>, dir: string): Run {
  const port = freePort();
  const full = {
    HOST: "127.0.0.1",
    PORT: String(port),
    DATA_DIR: join(dir, service),
    LOG_LEVEL: "debug",
    ...env,
  };
  const run = new WatchedProcess({
    args: serviceRunArgs(ROOT, service, full),
    cwd: ROOT,
    env: full,
  });
  return {
    url: (path) => `http://127.0.0.1:${port}${path}`,
    output: () => run.output(),
    exited: () => run.exited(),
    async stop() {
      await run.stop("SIGKILL");
    },
  };
}

/** Waits until `run` answers `/ready` with 503 and an error matching `why`; returns the body. */
async function notReadyBecause(run: Run, why: RegExp): Promise<string> {
  return await waitFor(async () => {
    if (run.exited()) throw new Error(`the service exited:\n${run.output().slice(-2000)}`);
    const res = await fetch(run.url("/ready")).catch(() => undefined);
    const text = await res?.text();
    return res?.status === 503 && why.test(text ?? "") ? text : undefined;
  }, { timeoutMs: 30_000, what: `/ready to answer 503 saying ${why}` });
}

Deno.test(
  "a service that cannot connect says why, without the password",
  INTEGRATION,
  async (t) => {
    const dir = await Deno.makeTempDir({ prefix: "campus-secrets-" });
    const node = await createBrokerNode();
    const database = await createPostgresDatabase();
    const databaseUrl = new URL(database.url);
    databaseUrl.password = DB_PW;
    const runs: Run[] = [];
    try {
      await node.start();

      await t.step("a wrong broker password", async () => {
        const run = runService("inventory", {
          AMQP_URL: `amqp://guest:${WRONG_BROKER_PW}@127.0.0.1:${node.port}`,
          DATABASE_URL: databaseUrl.toString(),
        }, dir);
        runs.push(run);
        const body = await notReadyBecause(run, /ACCESS.REFUSED/);
        await waitFor(() => /"msg":"reconnecting".*ACCESS.REFUSED/.test(run.output()), {
          what: "the refused login to be logged",
        });
        assertNoPasswords(body, `/ready: ${body}`);
        assertNoPasswords(run.output(), "the log");
      });

      await t.step("a broker port nobody listens on", async () => {
        const run = runService("notification", {
          AMQP_URL: `amqp://guest:${WRONG_BROKER_PW}@127.0.0.1:${freePort()}`,
        }, dir);
        runs.push(run);
        const body = await notReadyBecause(run, /ECONNREFUSED/);
        await waitFor(() => /"msg":"reconnecting".*ECONNREFUSED/.test(run.output()), {
          what: "the refused connection to be logged",
        });
        assertNoPasswords(body, `/ready: ${body}`);
        assertNoPasswords(run.output(), "the log");
      });

      await t.step("a database port nobody listens on", async () => {
        const unreachable = new URL(databaseUrl);
        unreachable.port = String(freePort());
        const run = runService("order", {
          AMQP_URL: node.url,
          DATABASE_URL: unreachable.toString(),
        }, dir);
        runs.push(run);
        const status = await waitFor(() => run.exited(), {
          timeoutMs: 30_000,
          what: "order to stop for want of its database",
        });
        assert.notEqual(status.code, 0);
        assert.match(run.output(), /Cannot open the database at postgres:\/\/postgres:\*\*\*@/);
        assertNoPasswords(run.output(), "the output");
      });
    } finally {
      for (const run of runs) await run.stop();
      await database.drop();
      await node.dispose();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
);
