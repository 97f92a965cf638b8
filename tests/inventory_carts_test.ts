/**
 * Carts and cancels through inventory on a real stack, on SQLite (one inventory) and on
 * PostgreSQL (two inventory replicas): a cart is reserved whole or refused whole, naming every
 * short line; 200 concurrent carts over scarce items, their lines in mixed order, take exactly
 * the stock of the reserved ones, never below zero, without a deadlock or a dead letter; an
 * cancel (`POST /orders/{id}/cancel`, repeated, and its `order.cancelled` replayed) gives a
 * reservation back once, and an `order.cancelled` that comes before its `order.placed` (both
 * published by hand on `orders_exchange`, in that order) makes that decision take nothing.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import type { OrderCancelled, OrderLine } from "@campus/shared/events";
import { getJson, postOrder, stockLevels } from "./client.ts";
import { deadLettered } from "./ledger.ts";
import { waitFor } from "./poll.ts";
import { INTEGRATION, type ServiceName, Stack, type StackOptions } from "./stack.ts";

const MENU = { Burger: 60, Coffee: 80, Pie: 40, Soup: 50 };
const ITEMS = Object.keys(MENU);

/** An order as `GET /orders/{id}` shows a cart. */
interface CartView {
  order_id: string;
  student_id: string;
  lines: OrderLine[];
  status: string;
  reason?: string;
  stock_released_at?: string;
}

const SETUPS: { name: string; options: StackOptions }[] = [
  { name: "SQLite", options: { store: "sqlite" } },
  {
    name: "PostgreSQL with two inventory replicas",
    options: { store: "postgres", replicas: { inventory: 2 } },
  },
];

for (const { name, options } of SETUPS) {
  Deno.test(`carts and cancels through inventory on ${name}`, INTEGRATION, async (t) => {
    const stack = await Stack.start({ ...options, menu: MENU });
    try {
      await t.step("a cart is reserved whole, its lines merged", async () => {
        const before = await stockLevels(stack);
        const order = await finalCart(stack, [
          { item: "Burger", qty: 2 },
          { item: "coffee", qty: 1 },
          { item: "burger ", qty: 1 },
        ]);
        assert.equal(order.status, "RESERVED");
        assert.deepEqual(order.lines, [{ item: "Burger", qty: 3 }, { item: "Coffee", qty: 1 }]);
        assert.deepEqual(
          await stockLevels(stack),
          { ...before, Burger: before.Burger - 3, Coffee: before.Coffee - 1 },
          "every line taken",
        );
      });

      await t.step("a short cart is refused naming every short line, no stock moved", async () => {
        const before = await stockLevels(stack);
        const order = await finalCart(stack, [
          { item: "Soup", qty: before.Soup + 1 },
          { item: "Coffee", qty: 1 },
          { item: "Pie", qty: before.Pie + 2 },
        ]);
        assert.equal(order.status, "FAILED");
        assert.equal(
          order.reason,
          `Soup: ${before.Soup + 1} requested, ${before.Soup} left; ` +
            `Pie: ${before.Pie + 2} requested, ${before.Pie} left`,
        );
        assert.deepEqual(await stockLevels(stack), before, "nothing moved");
      });

      await t.step("a cancel after the reservation, repeated, gives stock back once", async () => {
        const before = await stockLevels(stack);
        const order = await finalCart(stack, [{ item: "Pie", qty: 2 }, { item: "Soup", qty: 1 }]);
        assert.equal(order.status, "RESERVED");
        assert.deepEqual(
          await stockLevels(stack),
          { ...before, Pie: before.Pie - 2, Soup: before.Soup - 1 },
        );
        for (const attempt of ["cancel", "repeated cancel"]) {
          const res = await cancelOrder(stack, order.order_id);
          assert.equal(res.status, 200, `${attempt}: ${JSON.stringify(res.body)}`);
          assert.equal(res.body.status, "CANCELLED", attempt);
        }
        await logged(stack, "inventory", "stock released", order.order_id);
        const released = await waitFor(async () => {
          const { body } = await getJson<CartView>(stack.url("order", `/orders/${order.order_id}`));
          return body.stock_released_at;
        }, { what: `the order service to record that ${order.order_id}'s stock is back` });
        assert.ok(Date.parse(released) > 0);
        assert.deepEqual(await stockLevels(stack), before, "every line back");
        // The same event again, as a broker redelivers it or an operator replays it.
        await publishCancel(stack, cancelOf(order, "RESERVED"));
        await logged(
          stack,
          "inventory",
          "duplicate cancel, re-announcing its release",
          order.order_id,
        );
        await waitFor(async () => await stack.queueDepth("order_cancelled") === 0, {
          what: "order_cancelled to be drained",
        });
        assert.deepEqual(await stockLevels(stack), before, "still back exactly once");
      });

      await t.step("a cancel before order.placed makes the decision take nothing", async () => {
        const before = await stockLevels(stack);
        const order = {
          order_id: crypto.randomUUID(),
          student_id: "early-cancel",
          lines: [{ item: "Burger", qty: 1 }, { item: "Coffee", qty: 2 }],
        };
        await publishCancel(stack, cancelOf(order, "PLACED"));
        await logged(stack, "inventory", "cancel found nothing reserved", order.order_id);
        await stack.publish("order.placed", JSON.stringify(order));
        await logged(
          stack,
          "inventory",
          "order cancelled before its decision, nothing taken or announced",
          order.order_id,
        );
        assert.deepEqual(await stockLevels(stack), before, "nothing taken");
        const { body } = await getJson<{ outcome: string }[]>(
          stack.url("notification", `/notifications?order_id=${order.order_id}`),
        );
        assert.deepEqual(
          body.filter((n) => n.outcome === "RESERVED" || n.outcome === "FAILED"),
          [],
          "no inventory result announced, so none told",
        );
      });

      await t.step(
        "200 concurrent carts over scarce items take exactly the reserved stock",
        async () => {
          const before = await stockLevels(stack);
          const carts = Array.from(
            { length: 200 },
            (_, i) =>
              shuffled(ITEMS).slice(0, 1 + (i % 4)).map((item, j) => ({
                item,
                qty: 1 + ((i + j) % 3),
              })),
          );
          const answers = await Promise.all(
            carts.map((lines, i) => postOrder(stack, { student_id: `rush-${i}`, lines })),
          );
          assert.deepEqual(
            answers.filter((a) => a.status !== 201).map((a) =>
              `${a.status} ${JSON.stringify(a.body)}`
            ),
            [],
            "every cart accepted, no 5xx",
          );
          const ids = answers.map((a) => String(a.body.order_id));
          const orders = await finalCarts(stack, ids);
          const reserved = orders.filter((o) => o.status === "RESERVED");
          const failed = orders.filter((o) => o.status === "FAILED");
          assert.equal(reserved.length + failed.length, 200, "every cart decided");
          assert.ok(
            reserved.length > 0 && failed.length > 0,
            "scarce: some reserved, some refused",
          );
          for (const order of failed) {
            assert.match(order.reason ?? "", /requested/, `${order.order_id} refused for stock`);
          }
          const after = await stockLevels(stack);
          for (const item of ITEMS) {
            const taken = reserved.flatMap((o) => o.lines).filter((l) => l.item === item)
              .reduce((sum, l) => sum + l.qty, 0);
            assert.ok(after[item] >= 0, `${item} never below zero`);
            assert.equal(before[item] - after[item], taken, `${item}: taken = sum over reserved`);
          }
          assert.equal(await deadLettered(stack), 0, "nothing dead-lettered");
          const deadlockLines = await logLinesOf(stack, "inventory", (l) => /deadlock/i.test(l));
          assert.deepEqual(deadlockLines, [], "no deadlock in inventory's logs");
          if (options.store === "postgres") {
            assert.equal(
              await deadlocks(stack.databaseUrl("inventory")),
              0,
              "PostgreSQL broke none",
            );
          }
        },
      );
    } finally {
      await stack.dispose();
    }
  });
}

/** Places a cart (it must be accepted) and waits for its final status. */
async function finalCart(stack: Stack, lines: OrderLine[]): Promise<CartView> {
  const { status, body } = await postOrder(stack, { student_id: "S-cart", lines });
  assert.equal(status, 201, `POST /order answered ${status}: ${JSON.stringify(body)}`);
  const [order] = await finalCarts(stack, [String(body.order_id)]);
  return order;
}

/** Waits until every order of `ids` is no longer PLACED; returns them in that order. */
async function finalCarts(stack: Stack, ids: readonly string[]): Promise<CartView[]> {
  return await waitFor(async () => {
    const orders = await Promise.all(ids.map(async (id) => {
      const { status, body } = await getJson<CartView>(stack.url("order", `/orders/${id}`));
      return status === 200 && body.status !== "PLACED" ? body : undefined;
    }));
    return orders.every((o) => o !== undefined) ? orders as CartView[] : undefined;
  }, { timeoutMs: 120_000, intervalMs: 250, what: `${ids.length} carts to become final` });
}

const cancelOf = (
  order: Pick<CartView, "order_id" | "student_id" | "lines">,
  previous: OrderCancelled["previous"],
): OrderCancelled => ({
  order_id: order.order_id,
  student_id: order.student_id,
  lines: order.lines,
  cancelled_by: "student",
  previous,
});

/** `POST /orders/{id}/cancel`, as the student would (authentication is off). */
async function cancelOrder(stack: Stack, orderId: string) {
  const res = await fetch(stack.url("order", `/orders/${orderId}/cancel`), { method: "POST" });
  return { status: res.status, body: await res.json() as Record<string, unknown> };
}

/** Publishes `order.cancelled` as the order service's relay would. */
function publishCancel(stack: Stack, cancel: OrderCancelled): Promise<void> {
  return stack.publish("order.cancelled", JSON.stringify(cancel), {
    messageId: crypto.randomUUID(),
    correlationId: cancel.order_id,
    type: "OrderCancelled",
    persistent: true,
  });
}

/** The lines of every replica of `service` that `match` keeps. */
async function logLinesOf(
  stack: Stack,
  service: ServiceName,
  match: (line: string) => boolean,
): Promise<string[]> {
  const lines: string[] = [];
  for (let replica = 0; replica < stack.replicasOf(service); replica++) {
    lines.push(...(await stack.logs(service, replica)).split("\n").filter(match));
  }
  return lines;
}

/** Waits until some replica of `service` logged `msg` for `orderId`. */
async function logged(stack: Stack, service: ServiceName, msg: string, orderId: string) {
  await waitFor(
    async () =>
      (await logLinesOf(stack, service, (line) => line.includes(orderId))).some((line) => {
        try {
          return JSON.parse(line).msg === msg;
        } catch {
          return false;
        }
      }),
    { what: `${service} to log "${msg}" for ${orderId}` },
  );
}

/** Deadlocks PostgreSQL broke in the database at `url`. */
async function deadlocks(url: string): Promise<number> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const [{ n }] = await sql`SELECT deadlocks::int AS n FROM pg_stat_database
      WHERE datname = current_database()`;
    return n;
  } finally {
    await sql.end();
  }
}

/** A copy of `values` in random order. */
function shuffled<T>(values: readonly T[]): T[] {
  const copy = [...values];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [copy[i], copy[j]] = [copy[j], copy[i]];
  }
  return copy;
}
