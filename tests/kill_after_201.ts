/**
 * The kill of the order service right after a `201`, as the crash suite (local processes) and
 * the operator suite (`docker compose kill`) both drive it: an accepted order completes.
 */
import assert from "node:assert/strict";
import {
  finalOrder,
  finalOrders,
  getJson,
  orderMix,
  type OrderView,
  placeOrder,
  placeOrders,
  readiness,
} from "./client.ts";
import type { Stack } from "./stack.ts";

/**
 * Runs the two steps: an order whose `OrderPlaced` was still only in the outbox, and a kill the
 * moment the last of 30 concurrent answers arrived. Each order placed is added to `placedIds`,
 * for the suite's final ledger.
 */
export async function killOrderAfter201(
  t: Deno.TestContext,
  stack: Stack,
  menu: Record<string, number>,
  placedIds: string[],
): Promise<void> {
  await t.step("its OrderPlaced was still in the outbox", async () => {
    // With the broker stopped the relay cannot publish: the event exists only in the row
    // committed with the order when the process is killed.
    await stack.stopBroker();
    const placed = await placeOrder(stack, { item: "Coffee", qty: 1, student_id: "K1" });
    const ready = await readiness(stack, "order");
    assert.equal(ready.body.outbox_pending, 1, "the event waits in the outbox");
    await stack.kill("order");
    assert.equal((await stack.exitStatus("order"))?.signal, "SIGKILL");
    await stack.startBroker();
    await stack.start("order");
    const found = await getJson<OrderView>(stack.url("order", `/orders/${placed.order_id}`));
    assert.equal(found.status, 200, "the order survived the kill");
    assert.equal((await finalOrder(stack, placed.order_id, 60_000)).status, "RESERVED");
    placedIds.push(placed.order_id);
  });

  await t.step("killed the moment the last of 30 answers arrived", async () => {
    const placed = await placeOrders(stack, orderMix(menu, 30, "burst-", 5), {
      concurrency: 10,
    });
    await stack.kill("order");
    assert.equal((await stack.exitStatus("order"))?.signal, "SIGKILL");
    await stack.start("order");
    placedIds.push(...placed.map((o) => o.order_id));
    const final = await finalOrders(stack, placed.map((o) => o.order_id), 60_000);
    assert.equal(final.size, 30);
  });
}
