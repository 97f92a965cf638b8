import assert from "node:assert/strict";
import { createRouter } from "@campus/shared/http";
import { createLogger } from "@campus/shared/log";
import { Outbox } from "@campus/shared/outbox";
import { loadConfig } from "@campus/shared/config";
import { openDatabase } from "@campus/shared/sqlite";
import { createOrderService } from "./app.ts";

function setup() {
  const db = openDatabase(":memory:", "order");
  const outbox = new Outbox(db);
  let added = 0;
  outbox.onAdded(() => added++);
  const service = createOrderService({
    config: loadConfig("order", {}),
    db,
    outbox,
    log: createLogger("test", "error"),
  });
  const handle = createRouter(service.routes, createLogger("test", "error"));
  const call = (method: string, path: string, body?: unknown) =>
    handle(
      new Request(`http://order${path}`, {
        method,
        body: body === undefined ? undefined : JSON.stringify(body),
      }),
    );
  return { call, outbox, service, added: () => added };
}

Deno.test("POST /order answers 201 with the order and hands the event to the relay", async () => {
  const { call, outbox, added } = setup();
  const res = await call("POST", "/order", { item: "Coffee", qty: 1, student_id: "S1" });
  assert.equal(res.status, 201);
  const order = await res.json();
  assert.equal(res.headers.get("location"), `/orders/${order.order_id}`);
  assert.deepEqual(Object.keys(order).sort(), [
    "created_at",
    "item",
    "order_id",
    "qty",
    "status",
    "student_id",
    "updated_at",
  ]);
  assert.equal(outbox.size(), 1);
  assert.equal(added(), 1, "the outbox heard of its row, which wakes the relay");
  const fetched = await call("GET", `/orders/${order.order_id}`);
  assert.deepEqual(await fetched.json(), order);
});

Deno.test("a result on order_status makes the order final", async () => {
  const { call, service } = setup();
  const order = await (await call("POST", "/order", { item: "Tea", qty: 2, student_id: "S1" }))
    .json();
  await service.subscriptions.order_status.handle({
    routingKey: "inventory.failed",
    body: { ...order, reason: '"Tea" is not on the menu' },
    retries: 0,
  });
  const final = await (await call("GET", `/orders/${order.order_id}`)).json();
  assert.equal(final.status, "FAILED");
  assert.equal(final.reason, '"Tea" is not on the menu');
});

Deno.test("GET /orders refuses a bad status filter naming it", async () => {
  const { call } = setup();
  const res = await call("GET", "/orders?status=DONE");
  assert.equal(res.status, 400);
  assert.equal((await res.json()).details[0].field, "status");
});
