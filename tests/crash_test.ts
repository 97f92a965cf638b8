/**
 * Processes die: inventory is killed with SIGKILL mid-stream, the order service is killed
 * right after answering 201, and every service is stopped with SIGTERM under load. No order is
 * lost, none is charged twice, and a graceful stop exits 0 within its bound.
 */
import assert from "node:assert/strict";
import { INTEGRATION, type ServiceName, Stack } from "./stack.ts";
import {
  finalOrder,
  finalOrders,
  listNotifications,
  orderMix,
  type OrderRequest,
  type OrderView,
  placeOrder,
  placeOrders,
  readiness,
} from "./client.ts";
import { waitFor } from "./poll.ts";
import { killOrderAfter201 } from "./kill_after_201.ts";
import { SERVICE_NAMES } from "@campus/shared/topology";
import { assertLedger } from "./ledger.ts";

const MENU = { Coffee: 2000, Pizza: 400, Burger: 400, Taco: 60 };
/** The bound a graceful stop must keep (the services' SHUTDOWN_TIMEOUT_MS). */
const SHUTDOWN_TIMEOUT_MS = 5_000;

/** Places `requests` while `chaos` runs at the given counts of accepted orders. */
async function placeWithChaos(
  stack: Stack,
  requests: OrderRequest[],
  at: number[],
  chaos: (round: number) => Promise<void>,
): Promise<OrderView[]> {
  const rounds: Promise<void>[] = [];
  let chain = Promise.resolve();
  const placed = await placeOrders(stack, requests, {
    concurrency: 8,
    onPlaced: (count) => {
      const round = at.indexOf(count);
      if (round < 0) return;
      // Rounds run one after another, while the orders keep coming.
      chain = chain.then(() => chaos(round));
      // Reported by the Promise.all below, once the orders are placed.
      chain.catch(() => {});
      rounds.push(chain);
    },
  });
  await Promise.all(rounds);
  return placed;
}

Deno.test("process crashes and graceful stops", INTEGRATION, async (t) => {
  const stack = await Stack.start({
    menu: MENU,
    env: { SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS) },
  });
  const placedIds: string[] = [];
  try {
    await t.step("SIGKILL inventory four times while 500 orders flow", async () => {
      const kills: (string | undefined)[] = [];
      const placed = await placeWithChaos(
        stack,
        orderMix(MENU, 500, "kill-", 5),
        [100, 180, 260, 340],
        async () => {
          await stack.kill("inventory");
          kills.push((await stack.exitStatus("inventory"))?.signal);
          await stack.start("inventory");
        },
      );
      assert.deepEqual(kills, Array(4).fill("SIGKILL"));
      assert.equal(placed.length, 500, "all 500 answered 201");
      placedIds.push(...placed.map((o) => o.order_id));
      const final = await finalOrders(stack, placedIds, 60_000);
      assert.equal(final.size, 500, "none lost");
      await assertLedger(stack, MENU);
      assert.ok(
        [...final.values()].some((o) => o.status === "FAILED"),
        "Taco ran out, so some orders failed",
      );
    });

    await t.step(
      "an order whose 201 came just before a SIGKILL of order completes",
      (t) => killOrderAfter201(t, stack, MENU, placedIds),
    );

    await t.step("SIGTERM stops every service with 0 within its bound", async (t) => {
      await t.step("inventory, under load: in-flight work finishes, nothing is lost", async () => {
        const codes: number[] = [];
        const placed = await placeWithChaos(
          stack,
          orderMix(MENU, 150, "term-", 5),
          [60],
          async () => {
            codes.push(await stopWithinBound(stack, "inventory"));
            await stack.start("inventory");
          },
        );
        assert.deepEqual(codes, [0]);
        placedIds.push(...placed.map((o) => o.order_id));
        assert.equal((await finalOrders(stack, placed.map((o) => o.order_id))).size, 150);
      });

      await t.step("order: accepted orders are published before it exits", async () => {
        assert.equal(await stopWithinBound(stack, "inventory"), 0);
        const placed = await placeOrders(stack, orderMix(MENU, 20, "flush-", 5));
        assert.equal(await stopWithinBound(stack, "order"), 0);
        // Inventory is down, so every OrderPlaced the relay sent is still in the queue.
        assert.equal(await stack.queueDepth("order_placed"), 20, "all 20 were published");
        await stack.start("order");
        await stack.start("inventory");
        placedIds.push(...placed.map((o) => o.order_id));
        assert.equal((await finalOrders(stack, placed.map((o) => o.order_id))).size, 20);
      });

      await t.step("notification: results wait in its queues and are told after", async () => {
        assert.equal(await stopWithinBound(stack, "notification"), 0);
        const placed = await placeOrder(stack, { item: "Coffee", qty: 1, student_id: "N1" });
        await finalOrder(stack, placed.order_id);
        placedIds.push(placed.order_id);
        await stack.start("notification");
        await waitFor(
          async () => (await listNotifications(stack, placed.order_id)).length === 1,
          { what: `the notification of ${placed.order_id} after notification restarted` },
        );
      });
    });

    await t.step("every order was decided once, told once, and stock adds up", async () => {
      const ledger = await assertLedger(stack, MENU);
      assert.equal(ledger.accepted, placedIds.length, "the order service knows every order");
      for (const service of SERVICE_NAMES) {
        assert.equal((await readiness(stack, service)).status, 200, `${service} is ready`);
      }
    });
  } finally {
    await stack.dispose();
  }
});

/** SIGTERM, then the exit code, failing when the stop took longer than the bound. */
async function stopWithinBound(stack: Stack, service: ServiceName): Promise<number> {
  const started = Date.now();
  await stack.stop(service);
  const took = Date.now() - started;
  assert.ok(took < SHUTDOWN_TIMEOUT_MS, `${service} stopped in ${took} ms`);
  const exit = await stack.exitStatus(service);
  assert.ok(exit, `${service} has exited`);
  return exit.code;
}
