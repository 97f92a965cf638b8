/** The inventory service's subscriptions, driven as its consumer drives them. */
import assert from "node:assert/strict";
import { loadConfig } from "@campus/shared/config";
import type { IncomingMessage } from "@campus/shared/consumer";
import { InvalidMessage } from "@campus/shared/events";
import { createLogger } from "@campus/shared/log";
import { ServiceMetrics } from "@campus/shared/metrics";
import { openOutboxStore } from "@campus/shared/outbox_store";
import { SqliteDatabase } from "@campus/shared/sqlite";
import { drainOutbox } from "@campus/testing/store_contract";
import { createInventoryService } from "./app.ts";

async function setup() {
  const db = SqliteDatabase.open(":memory:", "inventory");
  const outbox = await openOutboxStore(db);
  const service = await createInventoryService({
    config: loadConfig("inventory", { MENU: "Burger=5,Soup=3" }),
    db,
    outbox,
    log: createLogger("test", "error"),
    metrics: new ServiceMetrics(),
    queueDepths: () => Promise.resolve(new Map()),
  });
  /** Handles `body` from `queue` as the consumer does: the batch's locks, then the handler. */
  const deliver = (queue: "order_placed" | "order_cancelled", body: unknown) => {
    const message: IncomingMessage = { body, routingKey: queue.replace("_", "."), retries: 0 };
    const subscription = service.subscriptions[queue];
    return db.transaction(async () => {
      await subscription.prepareBatch?.([message]);
      await subscription.handle(message);
    });
  };
  const stock = async () => {
    const url = new URL("http://inventory/inventory");
    const res = await service.routes[0].handler(new Request(url), {}, url);
    return Object.fromEntries(
      (await res.json() as { item: string; quantity: number }[]).map((l) => [l.item, l.quantity]),
    );
  };
  return { db, outbox, deliver, stock };
}

const cart = {
  order_id: "c1",
  student_id: "S1",
  lines: [{ item: "soup", qty: 2 }, { item: "Burger", qty: 1 }],
};

Deno.test("order_cancelled gives a reserved cart's stock back once", async () => {
  const { db, outbox, deliver, stock } = await setup();
  try {
    await deliver("order_placed", cart);
    assert.deepEqual(await stock(), { Burger: 4, Soup: 1 });
    const cancel = {
      ...cart,
      cancelled_by: "staff",
      reason: "kitchen closed",
      previous: "RESERVED",
    };
    await deliver("order_cancelled", cancel);
    await deliver("order_cancelled", cancel);
    assert.deepEqual(await stock(), { Burger: 5, Soup: 3 });
    assert.deepEqual((await drainOutbox(outbox)).map((e) => e.routingKey), [
      "inventory.reserved",
      "inventory.released",
      "inventory.released",
    ]);
  } finally {
    await db.close();
  }
});

Deno.test("order_cancelled refuses a body that is no cancel, naming the field", async () => {
  const { db, deliver } = await setup();
  try {
    await assert.rejects(
      deliver("order_cancelled", { ...cart, cancelled_by: "robot", previous: "PLACED" }),
      (err: Error) =>
        err instanceof InvalidMessage && /cancelled_by must be student or staff/.test(err.message),
    );
    await assert.rejects(
      deliver("order_cancelled", {
        ...cart,
        lines: [],
        cancelled_by: "student",
        previous: "PLACED",
      }),
      (err: Error) => err instanceof InvalidMessage && /lines/.test(err.message),
    );
  } finally {
    await db.close();
  }
});

Deno.test("order_placed after an early cancel takes nothing, announces nothing", async () => {
  const { db, outbox, deliver, stock } = await setup();
  try {
    await deliver("order_cancelled", { ...cart, cancelled_by: "student", previous: "PLACED" });
    await deliver("order_placed", cart);
    assert.deepEqual(await stock(), { Burger: 5, Soup: 3 });
    const events = await drainOutbox(outbox);
    assert.deepEqual(events.map((e) => [e.routingKey, e.body.nothing_reserved]), [
      ["inventory.released", true],
    ]);
  } finally {
    await db.close();
  }
});
