/**
 * The order service's PostgreSQL database refuses connections for 15 s while the kitchen board
 * and a student's stream are open: the service lives through it (its board refreshes fail, and
 * are retried), `/ready` names the database meanwhile, and everything works again afterwards.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { TEST_POSTGRES_URL } from "@campus/shared/store_testing";
import type { Board } from "../services/order/board.ts";
import type { OrderView } from "../services/order/order_view.ts";
import { finalOrder, placeOrder, readiness } from "./client.ts";
import { EventStreamReader } from "./event_stream_client.ts";
import { waitFor } from "./poll.ts";
import { INTEGRATION, Stack } from "./stack.ts";

/** How long the database refuses connections: several board refreshes fail meanwhile. */
const OUTAGE_MS = 15_000;

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
        await server.unsafe(`ALTER DATABASE ${database} WITH ALLOW_CONNECTIONS false`);
        await server`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
        WHERE datname = ${database} AND pid <> pg_backend_pid()`;
        const until = Date.now() + OUTAGE_MS;
        let namedDatabase: Record<string, unknown> | undefined;
        // Held for the whole outage, and checked all along: the process must never end.
        await waitFor(async () => {
          let health: Response, ready: Response;
          try {
            // Each answer is awaited for a bounded time: a hung endpoint fails, naming itself.
            health = await fetch(stack.url("order", "/health"), {
              signal: AbortSignal.timeout(10_000),
            });
            await health.body?.cancel();
            ready = await fetch(stack.url("order", "/ready"), {
              signal: AbortSignal.timeout(10_000),
            });
          } catch (err) {
            throw await exitedOr(stack, err);
          }
          assert.equal(health.status, 200, "/health answers while the database is away");
          const body = await ready.json() as Record<string, unknown>;
          if (ready.status === 503 && "database" in body) namedDatabase = body;
          return Date.now() >= until;
        }, { timeoutMs: OUTAGE_MS + 10_000, intervalMs: 500, what: "the outage to pass" });
        assert.ok(
          namedDatabase,
          "/ready answered 503 naming the database at least once during the outage",
        );
        assert.match(String(namedDatabase.error), /database/);
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

/** The error to report for a failed call: the service's exit with its log, if it ended. */
async function exitedOr(stack: Stack, err: unknown): Promise<unknown> {
  const exit = await stack.waitForExit("order", 5_000).catch(() => undefined);
  if (!exit) return err;
  return new Error(
    `the order service exited with status ${exit.code} during the outage; its log ends:\n` +
      (await stack.logs("order")).slice(-3000),
  );
}
