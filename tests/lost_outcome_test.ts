/**
 * Every order ends, whatever happened to a result after the broker confirmed it. The broker's
 * `mandatory` flag only catches a result that no queue takes; a result that reaches the
 * notification queues while `order_status` is missing is confirmed, and gone for the order
 * service. Here that happens on a broker node of the suite's own: results held back by a memory
 * alarm are published while `order_status` is deleted, and the order service must ask again.
 * A cancel lost the same way (`order_cancelled` deleted while notification's `order_updates`
 * takes it) must still give its stock back: the order service sends it again.
 */
import assert from "node:assert/strict";
import { OWN_BROKER_NODE, Stack, type StackOptions } from "./stack.ts";
import {
  cancelOrder,
  finalOrders,
  getOrder,
  listNotifications,
  orderMix,
  placeOrder,
  placeOrders,
  type Readiness,
  readiness,
  stockLevels,
} from "./client.ts";
import { assertLedger } from "./ledger.ts";
import { waitFor } from "./poll.ts";

const MENU = { Coffee: 100, Salad: 100, Pizza: 100 };
const ORDERS = 10;
/** Short, so that the order service asks again within the suite's deadlines. */
const OUTCOME_TIMEOUT_MS = 2000;

for (
  const [engine, options] of [
    ["SQLite", {}],
    ["PostgreSQL, two order replicas", { store: "postgres", replicas: { order: 2 } }],
  ] as [string, StackOptions][]
) {
  Deno.test(
    `results and cancels lost after their confirm still end every order (${engine})`,
    OWN_BROKER_NODE,
    async (t) => {
      const stack = await Stack.start({
        ...options,
        menu: MENU,
        env: { OUTCOME_TIMEOUT_MS: String(OUTCOME_TIMEOUT_MS) },
      });
      const orderReplicas = Array.from({ length: stack.replicasOf("order") }, (_, r) => r);
      /** Messages in a queue, unacknowledged ones included; -1 when the queue does not exist. */
      const messagesIn = async (queue: string) => {
        const out = await stack.rabbitmqctl(
          "list_queues",
          "-q",
          "--no-table-headers",
          "name",
          "messages",
        );
        const line = out.split("\n").map((l) => l.trim().split(/\s+/)).find(([name]) =>
          name === queue
        );
        return line ? Number(line[1]) : -1;
      };
      /** The sum of an order service counter over its replicas. */
      const counted = async (name: string) => {
        let sum = 0;
        for (const replica of orderReplicas) {
          const text = await (await fetch(stack.url("order", "/metrics", replica))).text();
          const line = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
          assert.ok(line, `order replica ${replica} exposes ${name}`);
          sum += Number(line[1]);
        }
        return sum;
      };
      try {
        await t.step("results lost after their confirm", async () => {
          await stack.stop("inventory");
          const placed = await placeOrders(stack, orderMix(MENU, ORDERS, "lost-"));
          const ids = placed.map((o) => o.order_id);
          // At least: an order service that already asked again about an order queued it twice.
          await waitFor(async () => (await messagesIn("order_placed")) >= ORDERS, {
            what: `the ${ORDERS} orders queued in order_placed while inventory is down`,
          });
          for (const replica of orderReplicas) await stack.stop("order", replica);

          await stack.rabbitmqctl("set_vm_memory_high_watermark", "0.0000001");
          try {
            await stack.start("inventory");
            await waitFor(async () => (await messagesIn("order_placed")) === 0, {
              timeoutMs: 60_000,
              what: "inventory to decide and acknowledge all the orders during the alarm",
            });
            const held = await waitFor(async () => {
              const r = await readiness(stack, "inventory");
              return r.body.outbox_pending >= ORDERS ? r : undefined;
            }, { what: `inventory's ${ORDERS} results held in its outbox by the alarm` });
            assert.equal(held.body.broker, "blocked", JSON.stringify(held.body));
            assert.notEqual(await messagesIn("order_status"), -1, "order_status exists before");
            await stack.rabbitmqctl("delete_queue", "order_status");
            assert.equal(await messagesIn("order_status"), -1, "order_status is gone");
          } finally {
            await stack.rabbitmqctl("set_vm_memory_high_watermark", "0.4");
          }

          const wanted = new Set(ids);
          await waitFor(async () => {
            const told = (await listNotifications(stack)).filter((n) => wanted.has(n.order_id));
            return told.length === ORDERS;
          }, { timeoutMs: 30_000, what: `notification to record all ${ORDERS} results` });
          const published: Readiness = await waitFor(async () => {
            const r = await readiness(stack, "inventory");
            return r.status === 200 && r.body.outbox_pending === 0 ? r : undefined;
          }, { what: "inventory's results published and confirmed" });
          assert.equal(published.body.broker, "connected");
          assert.equal(
            await messagesIn("order_status"),
            -1,
            "no service declared order_status again meanwhile: the results did not reach it",
          );

          // Back, the order service declares order_status again, empty: the results are gone.
          for (const replica of orderReplicas) await stack.start("order", replica);
          await waitFor(async () => (await messagesIn("order_status")) !== -1, {
            what: "the order service to declare order_status again",
          });
          const final = await finalOrders(stack, ids, 60_000);
          assert.deepEqual(
            [...final.values()].map((o) => o.status),
            ids.map(() => "RESERVED"),
            "every order reserved",
          );

          const ledger = await assertLedger(stack, MENU);
          assert.equal(ledger.accepted, ORDERS);
          assert.equal(ledger.notifications_duplicate, 0, "one notification per order");
          for (const id of ids) {
            const told = await listNotifications(stack, id);
            assert.deepEqual(told.map((n) => n.outcome), ["RESERVED"], `notifications of ${id}`);
          }

          const reasked = await counted("campus_orders_reasked_total");
          assert.ok(reasked >= ORDERS, `every lost order was asked about again (${reasked})`);
          const inventoryLog = await stack.logs("inventory");
          for (const id of ids) {
            assert.match(
              inventoryLog,
              new RegExp(`"duplicate order, re-announcing its outcome".*"order_id":"${id}"`),
              `inventory re-announced ${id} from its record`,
            );
          }
        });

        await t.step(
          "a cancel lost on its way to inventory still gives the stock back",
          async () => {
            const placed = await placeOrder(stack, {
              item: "Pizza",
              qty: 3,
              student_id: "lost-cancel",
            });
            await waitFor(
              async () => (await getOrder(stack, placed.order_id)).status === "RESERVED",
              {
                what: `order ${placed.order_id} to be RESERVED`,
              },
            );
            const reserved = await stockLevels(stack);
            assert.equal(await counted("campus_orders_release_reasked_total"), 0, "none yet");

            await stack.stop("inventory");
            try {
              await stack.rabbitmqctl("delete_queue", "order_cancelled");
              assert.equal(await messagesIn("order_cancelled"), -1, "order_cancelled is gone");
              const cancelled = await cancelOrder(stack, placed.order_id);
              assert.equal(cancelled.status, 200, JSON.stringify(cancelled.body));
              assert.equal(cancelled.body.status, "CANCELLED");
              // Published and confirmed: notification's order_updates took it; inventory's did not.
              await waitFor(
                async () =>
                  (await listNotifications(stack, placed.order_id)).some((n) =>
                    n.outcome === "CANCELLED"
                  ),
                { what: `the cancel of ${placed.order_id} told, so published and confirmed` },
              );
              assert.equal(await messagesIn("order_cancelled"), -1, "nobody took it for inventory");
            } finally {
              await stack.start("inventory");
            }

            const released = await waitFor(async () => {
              const order = await getOrder(stack, placed.order_id);
              return order.stock_released_at ? order : undefined;
            }, {
              timeoutMs: 60_000,
              what: `order ${placed.order_id} to have stock_released_at: its cancel sent again`,
            });
            assert.equal(released.status, "CANCELLED");
            assert.deepEqual(
              await stockLevels(stack),
              { ...reserved, Pizza: reserved.Pizza + 3 },
              "the stock is back",
            );
            const again = await counted("campus_orders_release_reasked_total");
            assert.ok(again >= 1, `the cancel was sent again (${again})`);
            assert.deepEqual(
              (await listNotifications(stack, placed.order_id)).map((n) => n.outcome),
              ["RESERVED", "CANCELLED"],
              "the cancel sent again told the student nothing twice",
            );
          },
        );
      } finally {
        await stack.dispose();
      }
    },
  );
}
