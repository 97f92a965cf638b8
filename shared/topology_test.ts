import assert from "node:assert/strict";
import {
  declarationsOf,
  dlqOf,
  EXCHANGE,
  queuesConsumedBy,
  retryQueueOf,
  WORK_QUEUES,
  workQueue,
} from "./topology.ts";

Deno.test("order_placed keeps the contract existing tools declare", () => {
  assert.equal(EXCHANGE, "orders_exchange");
  const [work, dlq] = declarationsOf(workQueue("order_placed"));
  assert.deepEqual(work, {
    name: "order_placed",
    arguments: {
      "x-dead-letter-exchange": "",
      "x-dead-letter-routing-key": "order_placed_dlq",
    },
  });
  assert.deepEqual(dlq, { name: "order_placed_dlq", arguments: {} }, "the DLQ has no arguments");
  assert.deepEqual(workQueue("order_placed").bindings, ["order.placed"]);
});

Deno.test("every work queue has its own DLQ and a retry queue that returns to it", () => {
  for (const queue of WORK_QUEUES) {
    const [work, dlq, retry] = declarationsOf(queue);
    assert.equal(work.arguments["x-dead-letter-routing-key"], dlqOf(queue.name));
    assert.equal(dlq.name, `${queue.name}_dlq`);
    assert.equal(retry.name, retryQueueOf(queue.name));
    assert.equal(retry.arguments["x-dead-letter-routing-key"], queue.name);
  }
});

Deno.test("each service consumes the queues the design gives it", () => {
  const names = (s: "order" | "inventory" | "notification") =>
    queuesConsumedBy(s).map((q) => q.name);
  assert.deepEqual(names("inventory"), ["order_placed"]);
  assert.deepEqual(names("notification"), ["inventory_reserved", "inventory_failed"]);
  assert.deepEqual(names("order"), ["order_status"]);
  assert.deepEqual(workQueue("order_status").bindings, ["inventory.reserved", "inventory.failed"]);
  assert.throws(() => workQueue("nope"), RangeError);
});
