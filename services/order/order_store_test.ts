import assert from "node:assert/strict";
import { Outbox } from "@campus/shared/outbox";
import { openDatabase } from "@campus/shared/sqlite";
import { OrderStore } from "./order_store.ts";

function setup() {
  const db = openDatabase(":memory:", "order");
  const outbox = new Outbox(db);
  return { outbox, orders: new OrderStore(db, outbox) };
}

const request = { item: "Coffee", qty: 1, student_id: "S1" };

Deno.test("place() stores the order and its OrderPlaced together", () => {
  const { orders, outbox } = setup();
  const order = orders.place(request);
  assert.equal(order.status, "PLACED");
  assert.deepEqual(orders.get(order.order_id), order);
  const [{ event }] = outbox.pending(10);
  assert.equal(event.type, "OrderPlaced");
  assert.equal(event.correlationId, order.order_id);
  assert.deepEqual(event.body, { order_id: order.order_id, ...request });
});

Deno.test("applyResult() moves an order forward once and never back", () => {
  const { orders } = setup();
  const { order_id } = orders.place(request);
  const failed = {
    outcome: "FAILED" as const,
    event: { order_id, ...request, reason: "none left" },
  };
  assert.equal(orders.applyResult(failed), true);
  assert.equal(orders.applyResult(failed), false, "a duplicate changes nothing");
  const late = { outcome: "RESERVED" as const, event: { order_id, ...request } };
  assert.equal(orders.applyResult(late), false, "a final status stays");
  assert.deepEqual(
    { status: orders.get(order_id)?.status, reason: orders.get(order_id)?.reason },
    { status: "FAILED", reason: "none left" },
  );
});

Deno.test("applyResult() takes the menu's spelling of the same item, never another item", () => {
  const { orders } = setup();
  const lower = orders.place({ ...request, item: "coffee" });
  const event = { order_id: lower.order_id, item: "Coffee", qty: 1, student_id: "S1" };
  assert.equal(orders.applyResult({ outcome: "RESERVED", event }), true);
  assert.equal(orders.get(lower.order_id)?.item, "Coffee");
  const tea = orders.place({ ...request, item: "Tea" });
  orders.applyResult({ outcome: "RESERVED", event: { ...event, order_id: tea.order_id } });
  assert.equal(
    orders.get(tea.order_id)?.item,
    "Tea",
    "a result for another item keeps the order's",
  );
});

Deno.test("applyResult() records an order that was published by hand", () => {
  const { orders } = setup();
  const event = { order_id: "hand-1", item: "Salad", qty: 5, student_id: "S3" };
  assert.equal(orders.applyResult({ outcome: "RESERVED", event }), true);
  assert.equal(orders.get("hand-1")?.status, "RESERVED");
});

Deno.test("list() filters by student and status", () => {
  const { orders } = setup();
  const a = orders.place(request);
  orders.place({ ...request, student_id: "S2" });
  orders.applyResult({ outcome: "RESERVED", event: { order_id: a.order_id, ...request } });
  assert.equal(orders.list().length, 2);
  assert.deepEqual(orders.list({ student_id: "S2" }).map((o) => o.student_id), ["S2"]);
  assert.deepEqual(orders.list({ status: "RESERVED" }).map((o) => o.order_id), [a.order_id]);
  assert.equal(orders.list({ limit: 1 }).length, 1);
});

Deno.test("pages() reads a long listing in pages, in the order orders were recorded", () => {
  const { orders } = setup();
  const placed = orders.placeAll(Array.from({ length: 1203 }, () => request));
  const pages = [...orders.pages()];
  assert.deepEqual(pages.map((p) => p.length), [500, 500, 203]);
  assert.deepEqual(pages.flat().map((o) => o.order_id), placed.map((o) => o.order_id));
  assert.equal([...orders.pages({ limit: 501 })].flat().length, 501);
});
