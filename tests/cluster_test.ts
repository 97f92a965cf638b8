/**
 * Scaled out: a private 3-node RabbitMQ cluster with quorum queues, and 2 order, 3 inventory and
 * 2 notification replicas sharing a PostgreSQL database per service. Two thousand orders flow,
 * more of them for one item than it has in stock, while one inventory replica is killed and
 * one broker node stops; then every ledger must add up, and every replica tell the same story.
 * On the same stack, carts are placed through one order replica and cancelled through the other
 * while another inventory replica is killed: each ends as it must, and stock adds up per item.
 */
import assert from "node:assert/strict";
import { SERVICE_NAMES } from "@campus/shared/topology";
import { INTEGRATION, Stack } from "./stack.ts";
import {
  cancelOrder,
  getJson,
  type LineView,
  listFrom,
  orderMix,
  type OrderRequest,
  type OrderStatus,
  placeCart,
  placeOrders,
  stockLevels,
} from "./client.ts";
import { checkLedger } from "./ledger.ts";
import { waitFor } from "./poll.ts";

const SCARCE = "Scarce";
const MENU = { Coffee: 2000, Pizza: 2000, Burger: 2000, Salad: 2000, [SCARCE]: 60 };
const ORDERS = 2000;
/** Every tenth order asks for one of the scarce item: 200 orders for 60 in stock. */
const SCARCE_EVERY = 10;

const REPLICAS = { order: 2, inventory: 3, notification: 2 } as const;

const CARTS = 300;
/** Every tenth cart also asks for the scarce item, all of it reserved by then: refused whole. */
const SCARCE_CART_EVERY = 10;
/** Every third of the other carts is cancelled through the other order replica. */
const CANCEL_EVERY = 3;
/** The inventory replica killed while the carts flow (replica 1 is killed by the first step). */
const KILLED_INVENTORY = 2;

Deno.test("a cluster of three broker nodes and replicas on PostgreSQL", INTEGRATION, async (t) => {
  const stack = await Stack.start({
    brokerNodes: 3,
    store: "postgres",
    replicas: REPLICAS,
    menu: MENU,
    env: { QUEUE_TYPE: "quorum" },
  });
  try {
    const plenty = Object.fromEntries(Object.entries(MENU).filter(([item]) => item !== SCARCE));
    const mix = orderMix(plenty, ORDERS, "cluster-", 3);
    const requests: OrderRequest[] = mix.map((order, i) =>
      i % SCARCE_EVERY === 0 ? { item: SCARCE, qty: 1, student_id: order.student_id } : order
    );
    const scarceOrders = requests.filter((r) => r.item === SCARCE).length;
    let orderIds: string[] = [];

    await t.step(
      "2000 orders while an inventory replica is killed and a broker node stops",
      async () => {
        const chaos: Promise<void>[] = [];
        const placed = await placeOrders(stack, requests, {
          concurrency: 16,
          onPlaced: (count) => {
            // The first node is where every service connected first: stopping it moves them all.
            if (count === 500) chaos.push(stack.kill("inventory", 1));
            if (count === 900) chaos.push(stack.stopBrokerNode(0));
          },
        });
        await Promise.all(chaos);
        assert.equal(placed.length, ORDERS, "every order answered 201");
        orderIds = placed.map((o) => o.order_id);
        assert.equal(new Set(orderIds).size, ORDERS, "two replicas never made the same order id");
      },
    );

    await t.step("no order is lost, stock is exact and each student is told once", async () => {
      const ledger = await checkLedger(stack, {
        stockBefore: MENU,
        orderIds,
        timeoutMs: 240_000,
      });
      assert.deepEqual(ledger.problems, [], `the ledgers disagree: ${ledger.problems.join("; ")}`);
      assert.equal(ledger.final, ORDERS);
      assert.equal(ledger.dead_lettered, 0, "nothing was dead-lettered");
      const orders = await listFrom<Row>(stack, "order", 0, "/orders");
      const scarce = orders.filter((o) => o.item === SCARCE);
      assert.equal(scarce.length, scarceOrders);
      assert.equal(
        scarce.filter((o) => o.status === "RESERVED").length,
        MENU[SCARCE],
        `the ${MENU[SCARCE]} ${SCARCE} in stock were reserved, no more, no fewer`,
      );
      assert.ok(
        scarce.filter((o) => o.status === "FAILED").every((o) => /Cannot reserve/.test(o.reason)),
        "the others were refused for want of stock",
      );
    });

    await t.step("every replica serves the same data", async () => {
      await stack.start("inventory", 1);
      for (
        const [service, path] of [
          ["order", "/orders"],
          ["inventory", "/inventory"],
          ["notification", "/notifications"],
        ] as const
      ) {
        const first = canonical(await listFrom<Row>(stack, service, 0, path));
        for (let replica = 1; replica < stack.replicasOf(service); replica++) {
          const other = canonical(await listFrom<Row>(stack, service, replica, path));
          assert.deepEqual(other, first, `${service} replica ${replica} agrees with replica 0`);
        }
      }
    });

    await t.step("the stopped node rejoins and the services stay ready", async () => {
      await stack.startBrokerNode(0);
      for (const service of SERVICE_NAMES) {
        for (let replica = 0; replica < stack.replicasOf(service); replica++) {
          await waitFor(async () => {
            const { status } = await getJson(stack.url(service, "/ready", replica));
            return status === 200;
          }, { timeoutMs: 60_000, what: `${service} replica ${replica} to be ready` });
        }
      }
    });

    await t.step(
      `${CARTS} carts, a third cancelled through the other replica, an inventory replica killed`,
      async () => {
        const plenty = Object.keys(MENU).filter((item) => item !== SCARCE);
        const stockBefore = await stockLevels(stack);
        const expected = new Map<string, OrderStatus>();
        const problems: string[] = [];
        let killing: Promise<void> | undefined;
        let next = 0;
        let done = 0;
        const worker = async () => {
          while (next < CARTS) {
            const i = next++;
            // Three lines in an order that differs from cart to cart, as students pick them.
            const lines: LineView[] = [0, 1, 2].map((k) => ({
              item: plenty[(i + k * (1 + (i % 3))) % plenty.length],
              qty: 1 + ((i + k) % 2),
            }));
            const scarce = i % SCARCE_CART_EVERY === 0;
            if (scarce) lines.splice(i % 3, 1, { item: SCARCE, qty: 1 });
            const replica = i % stack.replicasOf("order");
            const placed = await placeCart(
              stack,
              { student_id: `cluster-cart-${i}`, lines },
              replica,
            );
            if (scarce) {
              expected.set(placed.order_id, "FAILED");
            } else if (i % CANCEL_EVERY === 0) {
              const other = (replica + 1) % stack.replicasOf("order");
              const answer = await cancelOrder(stack, placed.order_id, { replica: other });
              if (answer.status !== 200 || answer.body.status !== "CANCELLED") {
                problems.push(
                  `cancel of ${placed.order_id}: ${answer.status} ${JSON.stringify(answer.body)}`,
                );
              }
              expected.set(placed.order_id, "CANCELLED");
            } else {
              expected.set(placed.order_id, "RESERVED");
            }
            if (++done === CARTS / 3) killing = stack.kill("inventory", KILLED_INVENTORY);
          }
        };
        await Promise.all(Array.from({ length: 12 }, worker));
        await killing;
        assert.deepEqual(problems, [], "every cancel answered 200 with the order CANCELLED");
        assert.equal(expected.size, CARTS, "every cart answered 201 with its own id");

        const orderIds = [...expected.keys()];
        const ledger = await checkLedger(stack, { stockBefore, orderIds, timeoutMs: 180_000 });
        assert.deepEqual(
          ledger.problems,
          [],
          `the ledgers disagree: ${ledger.problems.join("; ")}`,
        );
        assert.equal(ledger.dead_lettered, 0, "nothing was dead-lettered");
        const orders = new Map(
          (await listFrom<Row>(stack, "order", 1, "/orders")).map((o) => [o.order_id, o]),
        );
        const wrong = orderIds.filter((id) => orders.get(id)?.status !== expected.get(id))
          .map((id) => `${id}: ${orders.get(id)?.status}, expected ${expected.get(id)}`);
        assert.deepEqual(wrong, [], "every cart ended in its expected status");
        for (const id of orderIds.filter((id) => expected.get(id) === "FAILED")) {
          assert.match(
            String(orders.get(id)?.reason),
            new RegExp(`${SCARCE}: 1 requested, 0 left`),
            `the refusal of ${id} names the short line`,
          );
        }

        await stack.start("inventory", KILLED_INVENTORY);
        const first = canonical(await listFrom<Row>(stack, "inventory", 0, "/inventory"));
        assert.deepEqual(
          canonical(await listFrom<Row>(stack, "inventory", KILLED_INVENTORY, "/inventory")),
          first,
          `inventory replica ${KILLED_INVENTORY}, back, agrees with replica 0`,
        );
      },
    );
  } finally {
    await stack.dispose();
  }
});

// deno-lint-ignore no-explicit-any
type Row = Record<string, any>;

/** Rows in a fixed order, so two replicas' listings compare whatever order they came in. */
function canonical(rows: Row[]): Row[] {
  return rows.map((r) => JSON.stringify(r)).sort().map((r) => JSON.parse(r));
}
