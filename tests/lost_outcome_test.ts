/**
 * Every order ends, whatever happened to a result after the broker confirmed it. The broker's
 * `mandatory` flag only catches a result that no queue takes; a result that reaches the
 * notification queues while `order_status` is missing is confirmed, and gone for the order
 * service. Here that happens on a broker node of the suite's own: results held back by a memory
 * alarm are published while `order_status` is deleted, and the order service must ask again.
 */
import assert from "node:assert/strict";
import { OWN_BROKER_NODE, Stack, type StackOptions } from "./stack.ts";
import {
  finalOrders,
  listNotifications,
  orderMix,
  placeOrders,
  type Readiness,
  readiness,
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
    `results lost after their confirm still end every order (${engine})`,
    OWN_BROKER_NODE,
    async () => {
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
      try {
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

        let reasked = 0;
        for (const replica of orderReplicas) {
          const text = await (await fetch(stack.url("order", "/metrics", replica))).text();
          const line = /^campus_orders_reasked_total (\S+)$/m.exec(text);
          assert.ok(line, `order replica ${replica} exposes campus_orders_reasked_total`);
          reasked += Number(line[1]);
        }
        assert.ok(reasked >= ORDERS, `every lost order was asked about again (${reasked})`);
        const inventoryLog = await stack.logs("inventory");
        for (const id of ids) {
          assert.match(
            inventoryLog,
            new RegExp(`"duplicate order, re-announcing its outcome".*"order_id":"${id}"`),
            `inventory re-announced ${id} from its record`,
          );
        }
      } finally {
        await stack.dispose();
      }
    },
  );
}
