import assert from "node:assert/strict";
import { Outbox } from "@campus/shared/outbox";
import { openDatabase } from "@campus/shared/sqlite";
import { OrderStore } from "./order_store.ts";

function setup() {
  const db = openDatabase(":memory:", "order");
  const outbox = new Outbox(db);
  let now = Date.parse("2026-01-01T00:00:00Z");
  const orders = new OrderStore(db, outbox, () => now);
  return { db, outbox, orders, advance: (ms: number) => now += ms };
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
  const placed = Array.from({ length: 1203 }, () => orders.place(request));
  const pages = [...orders.pages()];
  assert.deepEqual(pages.map((p) => p.length), [500, 500, 203]);
  assert.deepEqual(pages.flat().map((o) => o.order_id), placed.map((o) => o.order_id));
  assert.equal([...orders.pages({ limit: 501 })].flat().length, 501);
});

Deno.test("placeAll() with an idempotency key places once and replays the order", () => {
  const { orders, outbox } = setup();
  const [first] = orders.placeAll([{ request, idempotencyKey: "k1" }]);
  assert.equal(first.kind, "placed");
  const [again] = orders.placeAll([{ request, idempotencyKey: "k1" }]);
  assert.equal(again.kind, "replayed");
  assert.equal(
    again.kind === "replayed" && again.order.order_id,
    first.kind === "placed" && first.order.order_id,
  );
  assert.equal(outbox.size(), 1, "one OrderPlaced: charged once");
  assert.equal(orders.list().length, 1);
});

Deno.test("placeAll() settles two uses of one key in the same group in order", () => {
  const { orders, outbox } = setup();
  const placements = orders.placeAll([
    { request, idempotencyKey: "k2" },
    { request, idempotencyKey: "k2" },
    { request: { ...request, qty: 2 }, idempotencyKey: "k2" },
    { request },
  ]);
  assert.deepEqual(placements.map((p) => p.kind), ["placed", "replayed", "conflict", "placed"]);
  const [placed, replayed, conflict] = placements;
  assert.equal(
    replayed.kind === "replayed" && replayed.order.order_id,
    placed.kind === "placed" && placed.order.order_id,
  );
  assert.deepEqual(
    conflict.kind === "conflict" && conflict.previous,
    request,
    "the conflict tells what the key was used for",
  );
  assert.equal(outbox.size(), 2);
});

Deno.test("a key is kept a day, then pruned, and only then may make a new order", () => {
  const { db, orders, advance } = setup();
  const keys = () => Number(db.prepare("SELECT count(*) AS n FROM idempotency_keys").get()?.n);
  orders.placeAll([{ request, idempotencyKey: "old" }]);
  advance(23 * 60 * 60 * 1000);
  assert.equal(orders.placeAll([{ request, idempotencyKey: "old" }])[0].kind, "replayed");
  assert.equal(keys(), 1);
  advance(2 * 60 * 60 * 1000);
  orders.placeAll([{ request, idempotencyKey: "new" }]);
  assert.equal(keys(), 1, "the expired key was pruned by a later commit");
  assert.equal(orders.placeAll([{ request, idempotencyKey: "old" }])[0].kind, "placed");
});
