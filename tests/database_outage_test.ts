/**
 * The order service's PostgreSQL database refuses connections for 15 s while the kitchen board
 * and a student's stream are open: the service lives through it (its board refreshes fail, and
 * are retried), `/ready` names the database meanwhile, and everything works again afterwards.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { errorText } from "@campus/shared/log";
import { TEST_POSTGRES_URL } from "@campus/testing/store_contract";
import type { Board } from "../services/order/pages/board.ts";
import type { OrderView } from "../services/order/order_view.ts";
import { finalOrder, placeOrder, readiness } from "./client.ts";
import { EventStreamReader } from "./event_stream_client.ts";
import { waitFor } from "./poll.ts";
import { INTEGRATION, Stack } from "./stack.ts";

/** How long the database refuses connections: several board refreshes fail meanwhile. */
const OUTAGE_MS = 15_000;

/** `/ready` calls made together, more than the service's pool of 8 connections. */
const PROBES = 12;

Deno.test(
  "the order service lives through its database refusing connections",
  INTEGRATION,
  async (t) => {
    const stack = await Stack.start({ store: "postgres" });
    const server = postgres(TEST_POSTGRES_URL, { max: 1, onnotice: () => {} });
    const streams: EventStreamReader[] = [];
    let database = "";
    try {
      const board = new EventStreamReader(await fetch(stack.url("order", "/board/events")));
      const student = new EventStreamReader(
        await fetch(stack.url("order", "/events?student_id=OUT1")),
      );
      streams.push(board, student);

      await t.step("a board and a student stream are open", async () => {
        await board.next("the first board", (e) => e.event === "board");
        await student.next("the student's orders", (e) => e.event === "orders");
        // The order service's own database: the one its connections (named order-<pid>) use.
        const pid = await stack.backend.pid("order");
        database = await waitFor(async () => {
          const [row] = await server`SELECT datname FROM pg_stat_activity
          WHERE application_name = ${`order-${pid}`} LIMIT 1`;
          return row?.datname as string | undefined;
        }, { what: `a connection of order-${pid} in pg_stat_activity` });
      });

      await t.step("the database refuses connections for 15 s; the service stays up", async () => {
        // The outage strikes while queries are under way, as it would under load.
        let busy = true;
        const load = (async () => {
          while (busy) {
            await Promise.all(
              Array.from({ length: PROBES }, async () => {
                await (await answer(stack, "/ready")).body?.cancel();
              }),
            );
          }
        })();
        await server.unsafe(`ALTER DATABASE ${database} WITH ALLOW_CONNECTIONS false`);
        await server`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
        WHERE datname = ${database} AND pid <> pg_backend_pid()`;
        busy = false;
        await load;
        const until = Date.now() + OUTAGE_MS;
        const answers: { status: number; body: Record<string, unknown> }[] = [];
        // Held for the whole outage, and checked all along: the process must never end.
        await waitFor(async () => {
          const health = await answer(stack, "/health");
          await health.body?.cancel();
          assert.equal(health.status, 200, "/health answers while the database is away");
          // More probes at once than the pool has connections (an orchestrator, Prometheus, a
          // person): those that wait for a connection must fail as well, not hang.
          const probes = await Promise.all(
            Array.from({ length: PROBES }, () => answer(stack, "/ready")),
          );
          for (const ready of probes) {
            answers.push({ status: ready.status, body: await ready.json() });
          }
          return Date.now() >= until;
        }, { timeoutMs: OUTAGE_MS + 30_000, intervalMs: 500, what: "the outage to pass" });
        for (const { status, body } of answers) {
          assert.equal(
            status,
            503,
            `/ready is not ready during the outage: ${JSON.stringify(body)}`,
          );
          assert.equal(body.database, "unavailable", "/ready names the database");
          assert.match(String(body.error), /database/);
        }
      });

      await t.step(
        "once the database is back, the service is ready and orders complete",
        async () => {
          await server.unsafe(`ALTER DATABASE ${database} WITH ALLOW_CONNECTIONS true`);
          await waitFor(async () => (await readiness(stack, "order")).status === 200, {
            timeoutMs: 30_000,
            what: "the order service to be ready again",
          });
          const placed = await placeOrder(stack, { item: "Coffee", qty: 1, student_id: "OUT1" });
          assert.equal((await finalOrder(stack, placed.order_id, 30_000)).status, "RESERVED");
          const heard = await student.next("the new order on the student's stream", (e) => {
            return e.event === "order" && (e.data as OrderView).order_id === placed.order_id &&
              (e.data as OrderView).status === "RESERVED";
          }, 30_000);
          assert.equal((heard.data as OrderView).student_id, "OUT1");
          // Counts and latest orders are two reads: one board may catch the move between them.
          await board.next("a board listing and counting the new order RESERVED", (e) => {
            const shown = e.data as Board;
            return e.event === "board" && shown.counts.RESERVED === 1 &&
              shown.latest.some((o) => o.order_id === placed.order_id && o.status === "RESERVED");
          }, 30_000);
          assert.equal(await stack.exitStatus("order"), undefined, "the order service still runs");
          assert.deepEqual(await stack.unhandledErrors(), [], "no rejection went unhandled");
        },
      );
    } finally {
      for (const stream of streams) await stream.cancel();
      if (database) {
        await server.unsafe(`ALTER DATABASE ${database} WITH ALLOW_CONNECTIONS true`)
          .catch(() => {});
      }
      await server.end();
      await stack.dispose();
    }
  },
);

/**
 * `GET path` of the order service, awaited for a bounded time so that a hung endpoint fails
 * naming itself; when the call fails because the service ended, says so with its log.
 */
async function answer(stack: Stack, path: string): Promise<Response> {
  try {
    return await fetch(stack.url("order", path), { signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    throw await exitedOr(stack, new Error(`GET ${path} failed: ${errorText(err)}`));
  }
}

/** The error to report for a failed call: the service's exit with its log, if it ended. */
async function exitedOr(stack: Stack, err: unknown): Promise<unknown> {
  const exit = await stack.waitForExit("order", 5_000).catch(() => undefined);
  if (!exit) return err;
  return new Error(
    `the order service exited with status ${exit.code} during the outage; its log ends:\n` +
      (await stack.logs("order")).slice(-3000),
  );
}
