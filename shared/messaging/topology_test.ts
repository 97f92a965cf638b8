import assert from "node:assert/strict";
import type { Subscription } from "./consumer.ts";
import { events } from "./contract.ts";
import type { ServiceDefinition } from "../runtime/service.ts";
import {
  declarationsOf,
  dlqOf,
  EVENT_FEEDS,
  eventFeedOf,
  EXCHANGE,
  retryQueueOf,
  SERVICE_NAMES,
  SERVICES,
  WORK_QUEUES,
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

Deno.test("QUEUE_TYPE=classic declares exactly what it always did", () => {
  for (const queue of WORK_QUEUES) {
    assert.deepEqual(
      declarationsOf(queue, { queueType: "classic", maxDeliveries: 9 }),
      declarationsOf(queue),
    );
  }
});

Deno.test("quorum queues replicate every queue and dead-letter at least once", () => {
  const [work, dlq, retry] = declarationsOf(workQueue("order_placed"), {
    queueType: "quorum",
    maxDeliveries: 7,
  });
  assert.deepEqual(work.arguments, {
    "x-queue-type": "quorum",
    "x-dead-letter-exchange": "",
    "x-dead-letter-routing-key": "order_placed_dlq",
    "x-overflow": "reject-publish",
    "x-dead-letter-strategy": "at-least-once",
    "x-delivery-limit": 28,
  });
  assert.deepEqual(dlq, { name: "order_placed_dlq", arguments: { "x-queue-type": "quorum" } });
  assert.deepEqual(retry.arguments, {
    "x-queue-type": "quorum",
    "x-dead-letter-exchange": "",
    "x-dead-letter-routing-key": "order_placed",
    "x-overflow": "reject-publish",
    "x-dead-letter-strategy": "at-least-once",
  });
});

Deno.test("each service consumes the queues the design gives it", () => {
  assert.deepEqual(names("inventory"), ["order_placed", "order_cancelled"]);
  assert.deepEqual(workQueue("order_cancelled").bindings, ["order.cancelled"]);
  assert.deepEqual(names("notification"), [
    "inventory_reserved",
    "inventory_failed",
    "order_updates",
  ]);
  assert.deepEqual(names("order"), ["order_status"]);
  assert.deepEqual(workQueue("order_status").bindings, [
    "inventory.reserved",
    "inventory.failed",
    "inventory.released",
  ]);
});

Deno.test("order_updates brings notification the cancels and the kitchen's moves", () => {
  assert.deepEqual(workQueue("order_updates"), {
    name: "order_updates",
    bindings: ["order.status_changed", "order.cancelled"],
    consumer: "notification",
  });
});

Deno.test("every binding is the routing key of an event in the wire contract", () => {
  const keys = new Set<string>(Object.values(events).map((e) => e.routingKey));
  for (
    const { name, bindings } of [
      ...WORK_QUEUES,
      ...EVENT_FEEDS.map((f) => ({ ...f, name: f.listener })),
    ]
  ) {
    for (const key of bindings) assert.ok(keys.has(key), `${name} binds "${key}", no event's key`);
  }
});

Deno.test("a service's subscriptions are typed from the table", () => {
  const subscription: Subscription = { handle: () => {} };
  const notification: ServiceDefinition<"notification">["subscriptions"] = {
    inventory_reserved: subscription,
    inventory_failed: subscription,
    order_updates: subscription,
  };
  // `deno test` type-checks this file: each line below must fail to compile, or the test does.
  const misspelt: ServiceDefinition<"order">["subscriptions"] = {
    // @ts-expect-error a misspelt queue is not one the table gives the order service
    order_statuz: subscription,
  };
  // @ts-expect-error a queue of the table is missing
  const missing: ServiceDefinition<"notification">["subscriptions"] = {
    inventory_reserved: subscription,
  };
  const foreign: ServiceDefinition<"inventory">["subscriptions"] = {
    order_placed: subscription,
    order_cancelled: subscription,
    // @ts-expect-error order_status belongs to the order service
    order_status: subscription,
  };
  assert.deepEqual(Object.keys(notification), names("notification"));
  assert.notDeepEqual(Object.keys(misspelt), names("order"));
  assert.notDeepEqual(Object.keys(missing), names("notification"));
  assert.notDeepEqual(Object.keys(foreign), names("inventory"));
});

Deno.test("every service has a port and a deno task that runs it", async () => {
  const config = JSON.parse(
    await Deno.readTextFile(new URL("../../deno.json", import.meta.url)),
  ) as { tasks: Record<string, string> };
  assert.deepEqual(SERVICE_NAMES, ["order", "inventory", "notification"]);
  assert.deepEqual(SERVICES.map((s) => s.port), [5001, 5002, 5003]);
  for (const { name, task } of SERVICES) {
    // The launcher that starts services/<name>/main.ts with the permissions it needs.
    assert.match(config.tasks[task] ?? "(missing)", new RegExp(` tools/run_service\\.ts ${name}$`));
  }
});

function names(service: typeof SERVICE_NAMES[number]): string[] {
  return WORK_QUEUES.filter((q) => q.consumer === service).map((q) => q.name);
}

function workQueue(name: string) {
  const queue = WORK_QUEUES.find((q) => q.name === name);
  assert.ok(queue, `work queue "${name}" is in the table`);
  return queue;
}

Deno.test("the order replicas' event feed hears results and moves, never order.placed", () => {
  const feed = eventFeedOf("order");
  assert.deepEqual(feed?.bindings, [
    "inventory.reserved",
    "inventory.failed",
    "order.status_changed",
    "order.cancelled",
  ]);
  // A feed queue bound to order.placed would take a publish meant for a missing order_placed.
  for (const f of EVENT_FEEDS) assert.ok(!f.bindings.includes("order.placed" as never));
  assert.equal(eventFeedOf("inventory"), undefined);
});
