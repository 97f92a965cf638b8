/**
 * One stock row held by another transaction, as an operator's `psql` (`BEGIN; SELECT … FOR
 * UPDATE`) or a paused replica would hold it, must stall only the orders for that item: the
 * others keep completing while it is held, inventory's `/ready` says its database work is
 * stalled, and the held orders complete once the row is free, none of them failed or
 * dead-lettered for having waited.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { dlqOf } from "@campus/shared/topology";
import { INTEGRATION, Stack } from "./stack.ts";
import {
  finalOrders,
  getJson,
  type OrderRequest,
  type OrderView,
  placeOrders,
  readiness,
} from "./client.ts";
import { waitFor } from "./poll.ts";

const MENU = { Coffee: 200, Pizza: 50 };
const HELD = "Pizza";
/** How long the row is held: longer than every lock, statement and stall bound of the services. */
const HOLD_MS = 40_000;
const COFFEE_ORDERS = 150;
/** A Pizza order every this many Coffee orders, so that batches mix both. */
const PIZZA_EVERY = 50;

Deno.test(
  "a stock row held by another transaction stalls only its own item",
  INTEGRATION,
  async (t) => {
    const stack = await Stack.start({ store: "postgres", menu: MENU });
    const hold = await holdRow(stack.databaseUrl("inventory"), HELD);
    try {
      const requests: OrderRequest[] = [];
      for (let i = 0; i < COFFEE_ORDERS; i++) {
        if (i % PIZZA_EVERY === 0) requests.push({ item: HELD, qty: 1, student_id: `held-${i}` });
        requests.push({ item: "Coffee", qty: 1, student_id: `free-${i}` });
      }
      let pizzaIds: string[] = [];

      await t.step("the other item's orders complete while the row is still held", async () => {
        const placed = await placeOrders(stack, requests);
        const coffeeIds = placed.filter((o) => o.item === "Coffee").map((o) => o.order_id);
        pizzaIds = placed.filter((o) => o.item === HELD).map((o) => o.order_id);
        const stalled = waitFor(async () => {
          const { status, body } = await readiness(stack, "inventory");
          return status === 503 && body.database === "stalled" ? body : undefined;
        }, {
          timeoutMs: hold.remainingMs(),
          intervalMs: 200,
          what: `inventory's /ready to answer 503 with "database":"stalled" while ${HELD} is held`,
        });
        // Awaited below; until then a failure of the wait for the orders comes first.
        stalled.catch(() => {});
        const coffee = await finalOrders(stack, coffeeIds, hold.remainingMs());
        assert.ok(hold.open, `the ${HELD} row was still held when every Coffee order was final`);
        const statuses = [...coffee.values()].map((o) => o.status);
        assert.deepEqual(
          statuses.filter((s) => s !== "RESERVED"),
          [],
          `all ${COFFEE_ORDERS} Coffee orders were RESERVED`,
        );
        const pizzas = await Promise.all(pizzaIds.map(async (id) => {
          const { body } = await getJson<OrderView>(stack.url("order", `/orders/${id}`));
          return body.status;
        }));
        assert.deepEqual(pizzas, pizzaIds.map(() => "PLACED"), `the ${HELD} orders still wait`);
        const answer = await stalled;
        assert.match(String(answer.error), /database/, "the 503 says what waits");
        assert.ok(hold.open, `the ${HELD} row was still held when /ready said stalled`);
      });

      await t.step("once the row is free the held orders complete, none failed", async () => {
        await hold.release();
        const pizzas = await finalOrders(stack, pizzaIds, 60_000);
        assert.deepEqual(
          [...pizzas.values()].map((o) => `${o.status} ${o.reason ?? ""}`.trim()),
          pizzaIds.map(() => "RESERVED"),
          `every ${HELD} order was RESERVED after the wait`,
        );
        assert.equal(await stack.queueDepth(dlqOf("order_placed")), 0, "nothing was dead-lettered");
        const ready = await waitFor(async () => {
          const r = await readiness(stack, "inventory");
          return r.status === 200 ? r : undefined;
        }, { what: "inventory's /ready to answer 200 again" });
        assert.equal(ready.body.database, undefined, "the stall is over");
      });
    } finally {
      await hold.release();
      await stack.dispose();
    }
  },
);

/** A row of `stock` locked in another session for {@linkcode HOLD_MS}, or until released. */
async function holdRow(url: string, item: string) {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  const locked = Promise.withResolvers<void>();
  const done = Promise.withResolvers<void>();
  let open = false;
  let ended: Promise<void> | undefined;
  const until = Date.now() + HOLD_MS;
  const session = sql.begin(async (tx) => {
    const rows = await tx`SELECT item FROM stock WHERE item = ${item} FOR UPDATE`;
    if (rows.length !== 1) throw new Error(`No stock row for ${item}`);
    open = true;
    locked.resolve();
    await done.promise;
    open = false;
  }).catch((err) => locked.reject(err));
  const timer = setTimeout(() => done.resolve(), HOLD_MS);
  await locked.promise;
  return {
    get open() {
      return open;
    },
    /** Time left until the hold ends by itself. */
    remainingMs: () => Math.max(0, until - Date.now()),
    release() {
      clearTimeout(timer);
      done.resolve();
      return ended ??= session.then(() => sql.end());
    },
  };
}
