/**
 * A burst of orders that piles up while the order database is paused must be committed in
 * groups the database takes: 10,000 `POST /order` wait while another session holds the orders
 * table, and once it lets go every one of them is answered `201`. (A single group of them all
 * would carry some 70,000 parameters in one statement, past the 65,534 PostgreSQL's protocol
 * allows, and every order of it would get a 500.)
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { placeOrders } from "../bench/load.ts";
import { INTEGRATION, Stack } from "./stack.ts";
import { placeOrder } from "./client.ts";
import { waitFor } from "./poll.ts";

const BURST = 10_000;
const STUDENT = "burst";

Deno.test(
  "a burst that piled up behind a paused database is committed in full",
  INTEGRATION,
  async () => {
    const stack = await Stack.start({
      store: "postgres",
      menu: { Coffee: 20_000 },
      env: {
        // The orders wait for the table as long as it is held, as for a database that pauses.
        DB_LOCK_TIMEOUT_MS: "0",
        DB_STATEMENT_TIMEOUT_MS: "0",
      },
    });
    const holder = postgres(stack.databaseUrl("order"), { max: 1, onnotice: () => {} });
    const release = Promise.withResolvers<void>();
    let held: Promise<unknown> | undefined;
    try {
      // The schema is in place and the pool has its connections before the pause.
      await placeOrder(stack, { item: "Coffee", qty: 1, student_id: "warm-up" });
      const locked = Promise.withResolvers<void>();
      held = holder.begin(async (tx) => {
        // Reads go on (so /metrics answers); every insert into orders waits.
        await tx`LOCK TABLE orders IN SHARE MODE`;
        locked.resolve();
        await release.promise;
      }).catch((err) => locked.reject(err));
      await locked.promise;

      const burst = placeOrders({
        orderUrl: stack.url("order"),
        count: BURST,
        concurrency: BURST,
        studentId: STUDENT,
        items: ["Coffee"],
      });
      await waitFor(async () => {
        const pending = await intakePending(stack);
        return pending >= BURST ? pending : undefined;
      }, {
        timeoutMs: 90_000,
        intervalMs: 250,
        what: `the order service to hold all ${BURST} orders, waiting for the database`,
      });
      release.resolve();
      const { accepted, errors, errorSamples } = await burst;
      assert.deepEqual(
        { accepted: accepted.length, errors, errorSamples },
        { accepted: BURST, errors: 0, errorSamples: [] },
        `every one of the ${BURST} orders is answered 201`,
      );
      const [{ n }] =
        await holder`SELECT count(*)::int AS n FROM orders WHERE student_id = ${STUDENT}`;
      assert.equal(n, BURST, "and stored, once each");
    } finally {
      release.resolve();
      await held;
      await holder.end();
      await stack.dispose();
    }
  },
);

/** `campus_order_intake_pending` of the order service. */
async function intakePending(stack: Stack): Promise<number> {
  const text = await (await fetch(stack.url("order", "/metrics"))).text();
  const line = text.split("\n").find((l) => l.startsWith("campus_order_intake_pending "));
  if (!line) throw new Error("the order service reports no campus_order_intake_pending");
  return Number(line.split(" ")[1]);
}
