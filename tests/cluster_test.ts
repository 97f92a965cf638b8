/**
 * Scaled out: a private 3-node RabbitMQ cluster with quorum queues, and 2 order, 3 inventory and
 * 2 notification replicas sharing a PostgreSQL database per service. Two thousand orders flow,
 * more of them for one item than it has in stock, while one inventory replica is killed and
 * one broker node stops; then every ledger must add up, and every replica tell the same story.
 */
import assert from "node:assert/strict";
import { SERVICE_NAMES, type ServiceName } from "@campus/shared/topology";
import { INTEGRATION, Stack } from "./stack.ts";
import { getJson, orderMix, type OrderRequest, placeOrders } from "./client.ts";
import { checkLedger } from "./ledger.ts";
import { waitFor } from "./poll.ts";

const SCARCE = "Scarce";
const MENU = { Coffee: 2000, Pizza: 2000, Burger: 2000, Salad: 2000, [SCARCE]: 60 };
const ORDERS = 2000;
/** Every tenth order asks for one of the scarce item: 200 orders for 60 in stock. */
const SCARCE_EVERY = 10;

const REPLICAS = { order: 2, inventory: 3, notification: 2 } as const;

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
      const orders = await listFrom(stack, "order", 0, "/orders");
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
        const first = canonical(await listFrom(stack, service, 0, path));
        for (let replica = 1; replica < stack.replicasOf(service); replica++) {
          const other = canonical(await listFrom(stack, service, replica, path));
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
  } finally {
    await stack.dispose();
  }
});

// deno-lint-ignore no-explicit-any
type Row = Record<string, any>;

async function listFrom(
  stack: Stack,
  service: ServiceName,
  replica: number,
  path: string,
): Promise<Row[]> {
  const { status, body } = await getJson<Row[]>(stack.url(service, path, replica));
  assert.equal(status, 200, `${service} replica ${replica} lists ${path}`);
  return body;
}

/** Rows in a fixed order, so two replicas' listings compare whatever order they came in. */
function canonical(rows: Row[]): Row[] {
  return rows.map((r) => JSON.stringify(r)).sort().map((r) => JSON.parse(r));
}
