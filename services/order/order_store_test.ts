import assert from "node:assert/strict";
import type { Database } from "@campus/shared/database";
import type { PlaceOrderRequest } from "@campus/shared/events";
import { openOutboxStore } from "@campus/shared/outbox_store";
import { drainOutbox, storeContract } from "@campus/shared/store_testing";
import { openOrderStore, type Order, type OrderQuery, type OrderStore } from "./order_store.ts";

const request = { item: "Coffee", qty: 1, student_id: "S1" };

async function openOrders(db: Database) {
  let now = Date.parse("2026-01-01T00:00:00Z");
  const outbox = await openOutboxStore(db);
  const orders = await openOrderStore(db, outbox, { now: () => now });
  const place = async (r: PlaceOrderRequest = request) =>
    ((await orders.placeAll([{ request: r }]))[0] as { order: Order }).order;
  return { outbox, orders, place, advance: (ms: number) => now += ms };
}

const listOf = async (orders: OrderStore, query?: OrderQuery) =>
  (await Array.fromAsync(orders.pages(query))).flat();

storeContract("placeAll() stores each order and its OrderPlaced together", async ({ db }) => {
  const { orders, outbox, place } = await openOrders(db);
  const order = await place();
  assert.equal(order.status, "PLACED");
  assert.equal(order.created_at, order.updated_at);
  assert.equal(new Date(order.created_at).toISOString(), order.created_at);
  assert.deepEqual(await orders.get(order.order_id), order);
  assert.equal(await orders.get("nobody"), undefined);
  const [event, ...more] = await drainOutbox(outbox);
  assert.deepEqual(more, []);
  assert.equal(event.type, "OrderPlaced");
  assert.equal(event.correlationId, order.order_id);
  assert.deepEqual(event.body, { order_id: order.order_id, ...request });
});

storeContract("applyResult() moves an order forward once and never back", async ({ db }) => {
  const { orders, place } = await openOrders(db);
  const { order_id } = await place();
  const failed = {
    outcome: "FAILED" as const,
    event: { order_id, ...request, reason: "none left" },
  };
  assert.equal(await orders.applyResult(failed), true);
  assert.equal(await orders.applyResult(failed), false, "a duplicate changes nothing");
  const late = { outcome: "RESERVED" as const, event: { order_id, ...request } };
  assert.equal(await orders.applyResult(late), false, "a final status stays");
  const final = await orders.get(order_id);
  assert.deepEqual({ status: final?.status, reason: final?.reason }, {
    status: "FAILED",
    reason: "none left",
  });
  assert.ok(final!.updated_at >= final!.created_at);
});

storeContract("applyResult() takes the menu's spelling of the same item only", async ({ db }) => {
  const { orders, place } = await openOrders(db);
  const lower = await place({ ...request, item: "coffee" });
  const event = { order_id: lower.order_id, item: "Coffee", qty: 1, student_id: "S1" };
  assert.equal(await orders.applyResult({ outcome: "RESERVED", event }), true);
  assert.equal((await orders.get(lower.order_id))?.item, "Coffee");
  const tea = await place({ ...request, item: "Tea" });
  await orders.applyResult({ outcome: "RESERVED", event: { ...event, order_id: tea.order_id } });
  assert.equal((await orders.get(tea.order_id))?.item, "Tea", "another item keeps the order's");
});

storeContract("applyResult() records an order that was published by hand", async ({ db }) => {
  const { orders } = await openOrders(db);
  const event = { order_id: "hand-1", item: "Salad", qty: 5, student_id: "S3" };
  assert.equal(await orders.applyResult({ outcome: "RESERVED", event }), true);
  assert.equal((await orders.get("hand-1"))?.status, "RESERVED");
});

storeContract(
  "pages() filters by student and status and reads any number of orders",
  async ({ db }) => {
    const { orders, place } = await openOrders(db);
    const a = await place();
    await place({ ...request, student_id: "S2" });
    await orders.applyResult({ outcome: "RESERVED", event: { order_id: a.order_id, ...request } });
    assert.equal((await listOf(orders)).length, 2);
    assert.deepEqual((await listOf(orders, { student_id: "S2" })).map((o) => o.student_id), ["S2"]);
    assert.deepEqual((await listOf(orders, { status: "RESERVED" })).map((o) => o.order_id), [
      a.order_id,
    ]);
    assert.equal((await listOf(orders, { limit: 1 })).length, 1);
    const placed = await orders.placeAll(Array.from({ length: 1201 }, () => ({ request })));
    const pages = await Array.fromAsync(orders.pages());
    assert.deepEqual(pages.map((p) => p.length), [500, 500, 203]);
    assert.deepEqual(
      pages.flat().slice(2).map((o) => o.order_id),
      placed.map((p) => (p as { order: Order }).order.order_id),
      "in the order they were placed",
    );
    assert.equal((await listOf(orders, { limit: 501 })).length, 501);
  },
);

storeContract("an idempotency key places once and replays its order", async ({ db }) => {
  const { orders, outbox } = await openOrders(db);
  const [first] = await orders.placeAll([{ request, idempotencyKey: "k1" }]);
  assert.equal(first.kind, "placed");
  const [again] = await orders.placeAll([{ request, idempotencyKey: "k1" }]);
  assert.equal(again.kind, "replayed");
  assert.deepEqual(
    again.kind === "replayed" && again.order,
    first.kind === "placed" && first.order,
  );
  assert.equal((await drainOutbox(outbox)).length, 1, "one OrderPlaced: charged once");
  const placements = await orders.placeAll([
    { request, idempotencyKey: "k2" },
    { request, idempotencyKey: "k2" },
    { request: { ...request, qty: 2 }, idempotencyKey: "k2" },
    { request: { ...request, qty: 2 }, idempotencyKey: "k1" },
    { request },
  ]);
  assert.deepEqual(placements.map((p) => p.kind), [
    "placed",
    "replayed",
    "conflict",
    "conflict",
    "placed",
  ]);
  const [placed, replayed, conflict] = placements;
  assert.equal(
    replayed.kind === "replayed" && replayed.order.order_id,
    placed.kind === "placed" && placed.order.order_id,
  );
  assert.deepEqual(conflict.kind === "conflict" && conflict.previous, request);
  assert.equal((await drainOutbox(outbox)).length, 2);
});

storeContract(
  "a key is kept a day, then pruned, and only then makes a new order",
  async ({ db }) => {
    const { orders, advance } = await openOrders(db);
    await orders.placeAll([{ request, idempotencyKey: "old" }]);
    advance(23 * 60 * 60 * 1000);
    assert.equal((await orders.placeAll([{ request, idempotencyKey: "old" }]))[0].kind, "replayed");
    advance(2 * 60 * 60 * 1000);
    await orders.placeAll([{ request, idempotencyKey: "new" }]);
    assert.equal((await orders.placeAll([{ request, idempotencyKey: "old" }]))[0].kind, "placed");
    assert.equal((await orders.placeAll([{ request, idempotencyKey: "new" }]))[0].kind, "replayed");
  },
);

storeContract("every replica serves the same orders", async ({ db, replica }) => {
  const one = await openOrders(db);
  const other = await openOrders(replica());
  const order = await one.place();
  assert.deepEqual(await other.orders.get(order.order_id), order);
  const result = { outcome: "RESERVED" as const, event: { order_id: order.order_id, ...request } };
  const applied = await Promise.all([
    one.orders.applyResult(result),
    other.orders.applyResult(result),
  ]);
  assert.deepEqual(applied.sort(), [false, true], "one replica moves it on");
  assert.equal((await one.orders.get(order.order_id))?.status, "RESERVED");
});

storeContract("one key sent to two replicas at once makes one order", async ({ db, replica }) => {
  const stores = [(await openOrders(db)).orders, (await openOrders(replica())).orders];
  const placements = await Promise.all(
    Array.from(
      { length: 10 },
      (_, i) =>
        stores[i % 2].placeAll([{ request, idempotencyKey: `k${i >> 1}` }]).then(([p]) => p),
    ),
  );
  for (let k = 0; k < 5; k++) {
    const pair = placements.slice(2 * k, 2 * k + 2);
    assert.deepEqual(pair.map((p) => p.kind).sort(), ["placed", "replayed"]);
    const ids = pair.map((p) => (p as { order: Order }).order.order_id);
    assert.equal(ids[0], ids[1], `both replicas answer with one order for k${k}`);
  }
  assert.equal((await listOf(stores[0])).length, 5);
});

storeContract("oldestPlacedAt() is the oldest order still waiting", async ({ db }) => {
  const { orders, place } = await openOrders(db);
  assert.equal(await orders.oldestPlacedAt(), undefined, "none waits");
  const first = await place();
  const second = await place();
  assert.equal(await orders.oldestPlacedAt(), Date.parse(first.created_at));
  await orders.applyResult({
    outcome: "RESERVED",
    event: { order_id: first.order_id, ...request },
  });
  assert.equal(await orders.oldestPlacedAt(), Date.parse(second.created_at), "a final one left");
  await orders.applyResult({
    outcome: "RESERVED",
    event: { order_id: second.order_id, ...request },
  });
  assert.equal(await orders.oldestPlacedAt(), undefined);
});

storeContract("each order placed together keeps its own request's trace", async ({ db }) => {
  const { orders, outbox } = await openOrders(db);
  const traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  await orders.placeAll([{ request, traceparent }, { request }]);
  const events = await drainOutbox(outbox);
  assert.deepEqual(events.map((e) => e.traceparent), [traceparent, undefined]);
});
