import assert from "node:assert/strict";
import type { Database } from "@campus/shared/database";
import type { PlaceOrderRequest } from "./place_order_request.ts";
import { openOutboxStore } from "@campus/shared/outbox_store";
import { drainOutbox, storeContract } from "@campus/testing/store_contract";
import type { Order, OrderQuery } from "./order.ts";
import { openOrderStore, type OrderStore } from "./order_store.ts";

const request = { item: "Coffee", qty: 1, student_id: "S1" };
const lines = [{ item: "Coffee", qty: 1 }];

async function openOrders(db: Database) {
  let now = Date.parse("2026-01-01T00:00:00Z");
  const outbox = await openOutboxStore(db);
  const orders = await openOrderStore(db, outbox, { now: () => now });
  const place = async (r: PlaceOrderRequest = request) =>
    ((await orders.placeAll([{ request: r }]))[0] as { order: Order }).order;
  return { outbox, orders, place, advance: (ms: number) => now += ms };
}

const listOf = async (orders: OrderStore, query?: OrderQuery) =>
  (await Array.fromAsync(orders.batches(query))).flat();

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
  assert.deepEqual(event.body, { order_id: order.order_id, ...request, lines });
});

storeContract("applyResult() moves an order forward once and never back", async ({ db }) => {
  const { orders, place } = await openOrders(db);
  const { order_id } = await place();
  const failed = {
    outcome: "FAILED" as const,
    event: { order_id, ...request, lines, reason: "none left" },
  };
  assert.equal(await orders.applyResult(failed), true);
  assert.equal(await orders.applyResult(failed), false, "a duplicate changes nothing");
  const late = { outcome: "RESERVED" as const, event: { order_id, ...request, lines } };
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
  const event = { order_id: lower.order_id, student_id: "S1", lines };
  assert.equal(await orders.applyResult({ outcome: "RESERVED", event }), true);
  assert.equal((await orders.get(lower.order_id))?.item, "Coffee");
  const tea = await place({ ...request, item: "Tea" });
  await orders.applyResult({ outcome: "RESERVED", event: { ...event, order_id: tea.order_id } });
  assert.equal((await orders.get(tea.order_id))?.item, "Tea", "another item keeps the order's");
});

storeContract("applyResult() records an order that was published by hand", async ({ db }) => {
  const { orders } = await openOrders(db);
  const event = {
    order_id: "hand-1",
    item: "Salad",
    qty: 5,
    student_id: "S3",
    lines: [{ item: "Salad", qty: 5 }],
  };
  assert.equal(await orders.applyResult({ outcome: "RESERVED", event }), true);
  assert.equal((await orders.get("hand-1"))?.status, "RESERVED");
});

storeContract(
  "batches() filters by student and status and reads any number of orders",
  async ({ db }) => {
    const { orders, place } = await openOrders(db);
    const a = await place();
    await place({ ...request, student_id: "S2" });
    await orders.applyResult({
      outcome: "RESERVED",
      event: { order_id: a.order_id, ...request, lines },
    });
    assert.equal((await listOf(orders)).length, 2);
    assert.deepEqual((await listOf(orders, { student_id: "S2" })).map((o) => o.student_id), ["S2"]);
    assert.deepEqual((await listOf(orders, { status: "RESERVED" })).map((o) => o.order_id), [
      a.order_id,
    ]);
    assert.equal((await listOf(orders, { limit: 1 })).length, 1);
    const placed = await orders.placeAll(Array.from({ length: 1201 }, () => ({ request })));
    const pages = await Array.fromAsync(orders.batches());
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
  const result = {
    outcome: "RESERVED" as const,
    event: { order_id: order.order_id, ...request, lines },
  };
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
    event: { order_id: first.order_id, ...request, lines },
  });
  assert.equal(await orders.oldestPlacedAt(), Date.parse(second.created_at), "a final one left");
  await orders.applyResult({
    outcome: "RESERVED",
    event: { order_id: second.order_id, ...request, lines },
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

/** Asks due `timeoutMs` after placing, then 10 s after each ask. */
const reaskAt = (now: number, limit = 100) => ({
  now,
  timeoutMs: 30_000,
  nextAskAfter: (asks: number) => asks * 10_000,
  limit,
});

storeContract("reaskOverdue() asks again about late orders, then waits", async ({ db }) => {
  const { orders, outbox, place } = await openOrders(db);
  const late = await place();
  const done = await place();
  await orders.applyResult({
    outcome: "RESERVED",
    event: { order_id: done.order_id, ...request, lines },
  });
  await drainOutbox(outbox);
  const placedAt = Date.parse(late.created_at);

  assert.deepEqual(await orders.reaskOverdue(reaskAt(placedAt + 29_999)), [], "not yet overdue");
  const [first, ...others] = await orders.reaskOverdue(reaskAt(placedAt + 30_000));
  assert.deepEqual(others, [], "a final order is never asked about");
  assert.deepEqual(first, { order: late, asks: 1 });
  const [event, ...more] = await drainOutbox(outbox);
  assert.deepEqual(more, []);
  assert.equal(event.type, "OrderPlaced");
  assert.equal(event.correlationId, late.order_id);
  assert.deepEqual(event.body, { order_id: late.order_id, ...request, lines });

  assert.deepEqual(await orders.reaskOverdue(reaskAt(placedAt + 30_000)), [], "asked just now");
  assert.deepEqual(await orders.reaskOverdue(reaskAt(placedAt + 39_999)), [], "10 s after ask 1");
  const [second] = await orders.reaskOverdue(reaskAt(placedAt + 40_000));
  assert.equal(second.asks, 2);
  assert.deepEqual(await orders.reaskOverdue(reaskAt(placedAt + 59_999)), [], "20 s after ask 2");
  assert.equal((await orders.reaskOverdue(reaskAt(placedAt + 60_000)))[0]?.asks, 3);
  assert.equal((await drainOutbox(outbox)).length, 2, "one OrderPlaced per ask");

  await orders.applyResult({
    outcome: "FAILED",
    event: { order_id: late.order_id, ...request, lines, reason: "none left" },
  });
  assert.deepEqual(
    await orders.reaskOverdue(reaskAt(placedAt + 3_600_000)),
    [],
    "answered at last",
  );
  assert.deepEqual(await orders.get(late.order_id), {
    ...late,
    status: "FAILED",
    reason: "none left",
    updated_at: (await orders.get(late.order_id))!.updated_at,
  }, "asking changes nothing the API shows");
});

storeContract("reaskOverdue() takes at most its limit, oldest first", async ({ db }) => {
  const { orders, outbox } = await openOrders(db);
  const placed = [];
  for (let i = 0; i < 5; i++) {
    placed.push(((await orders.placeAll([{ request }]))[0] as { order: Order }).order);
    // Each a millisecond later than the one before: the oldest are taken first.
    const at = Date.parse(placed[i].created_at);
    while (Date.now() <= at) await new Promise((resolve) => setTimeout(resolve, 1));
  }
  await drainOutbox(outbox);
  const now = Date.now() + 60_000;
  const batches = [];
  for (let i = 0; i < 4; i++) batches.push(await orders.reaskOverdue(reaskAt(now, 2)));
  assert.deepEqual(
    batches.map((batch) => batch.map((r) => r.order.order_id)),
    [placed.slice(0, 2), placed.slice(2, 4), placed.slice(4), []].map((b) =>
      b.map((o) => o.order_id)
    ),
  );
  assert.equal((await drainOutbox(outbox)).length, 5);
});

storeContract(
  "replicas sweeping at once ask about each late order once",
  async ({ db, replica }) => {
    const one = await openOrders(db);
    const other = await openOrders(replica());
    const placed = await one.orders.placeAll(Array.from({ length: 40 }, () => ({ request })));
    await drainOutbox(one.outbox);
    const now = Date.now() + 60_000;
    const sweeps = await Promise.all(
      Array.from(
        { length: 6 },
        (_, i) => (i % 2 ? other : one).orders.reaskOverdue(reaskAt(now, 10)),
      ),
    );
    const asked = sweeps.flat().map((r) => r.order.order_id);
    assert.equal(asked.length, new Set(asked).size, "no order asked about twice");
    assert.deepEqual(
      asked.sort(),
      placed.map((p) => (p as { order: Order }).order.order_id).sort(),
      "every late order asked about",
    );
    assert.equal((await drainOutbox(one.outbox)).length, 40, "one OrderPlaced each");
  },
);
