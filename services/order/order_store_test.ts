import assert from "node:assert/strict";
import type { Database } from "@campus/shared/database";
import type { PlaceOrderRequest } from "./place_order_request.ts";
import { openOutboxStore } from "@campus/shared/outbox_store";
import { drainOutbox, storeContract } from "@campus/testing/store_contract";
import type { Order, OrderQuery } from "./order.ts";
import { openOrderStore, type OrderStore } from "./order_store.ts";

/** A classic single-item request, as `POST /order` hands it over. */
const classic = (item: string, qty: number, student_id: string): PlaceOrderRequest => ({
  item,
  qty,
  student_id,
  lines: [{ item, qty }],
});
const request = classic("Coffee", 1, "S1");
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
  const lower = await place(classic("coffee", 1, "S1"));
  const event = { order_id: lower.order_id, student_id: "S1", lines };
  assert.equal(await orders.applyResult({ outcome: "RESERVED", event }), true);
  assert.equal((await orders.get(lower.order_id))?.item, "Coffee");
  const tea = await place(classic("Tea", 1, "S1"));
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
    await place(classic("Coffee", 1, "S2"));
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
    { request: classic("Coffee", 2, "S1"), idempotencyKey: "k2" },
    { request: classic("Coffee", 2, "S1"), idempotencyKey: "k1" },
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

/** A RESERVED result for `order`, as inventory sends it. */
const reservedFor = (order: Order) => ({
  outcome: "RESERVED" as const,
  event: { order_id: order.order_id, student_id: order.student_id, lines: order.lines },
});

const cart = (student_id = "S1"): PlaceOrderRequest => ({
  student_id,
  lines: [{ item: "burger", qty: 2 }, { item: "Coffee", qty: 1 }],
});

storeContract("a cart is stored with its lines and announced whole", async ({ db }) => {
  const { orders, outbox, place } = await openOrders(db);
  const order = await place(cart());
  assert.deepEqual(order.lines, cart().lines);
  assert.equal("item" in order, false, "a cart of two lines has no flat item");
  assert.deepEqual(await orders.get(order.order_id), order);
  const [event] = await drainOutbox(outbox);
  assert.deepEqual(event.body, { order_id: order.order_id, ...cart() });
  const spelled = {
    outcome: "RESERVED" as const,
    event: {
      order_id: order.order_id,
      student_id: "S1",
      lines: [{ item: "Coffee", qty: 1 }, { item: "Burger", qty: 2 }],
    },
  };
  assert.equal(await orders.applyResult(spelled), true);
  const reserved = (await orders.get(order.order_id))!;
  assert.deepEqual(reserved.lines, [{ item: "Burger", qty: 2 }, { item: "Coffee", qty: 1 }]);
  assert.equal(reserved.status, "RESERVED");
  assert.ok(reserved.reserved_at, "reserved_at is set");
  const one = await place(classic("Tea", 2, "S1"));
  assert.deepEqual({ item: one.item, qty: one.qty, lines: one.lines }, {
    item: "Tea",
    qty: 2,
    lines: [{ item: "Tea", qty: 2 }],
  });
});

storeContract("an idempotency key compares a cart's merged lines in any order", async ({ db }) => {
  const { orders } = await openOrders(db);
  const [first] = await orders.placeAll([{ request: cart(), idempotencyKey: "c1" }]);
  const reversed = { ...cart(), lines: [...cart().lines].reverse() };
  const [again] = await orders.placeAll([{ request: reversed, idempotencyKey: "c1" }]);
  assert.equal(again.kind, "replayed");
  assert.equal(
    again.kind === "replayed" && again.order.order_id,
    first.kind === "placed" && first.order.order_id,
  );
  const other = { ...cart(), lines: [{ item: "burger", qty: 3 }] };
  const [conflict] = await orders.placeAll([{ request: other, idempotencyKey: "c1" }]);
  assert.equal(conflict.kind, "conflict");
});

storeContract("move() walks the kitchen's moves, each with its event", async ({ db }) => {
  const { orders, outbox, place } = await openOrders(db);
  const order = await place(cart());
  await orders.applyResult(reservedFor(order));
  await drainOutbox(outbox);
  const to = (status: "PREPARING" | "READY" | "COLLECTED" | "CANCELLED") =>
    orders.move({ orderId: order.order_id, to: status, by: "staff" });

  const started = await to("PREPARING");
  assert.equal(started.kind, "moved");
  assert.equal(started.kind === "moved" && started.previous.status, "RESERVED");
  assert.equal((await to("PREPARING")).kind, "already", "a repeat changes nothing");
  const cancel = await to("CANCELLED");
  assert.equal(cancel.kind, "conflict", "cooking started: no cancel");
  assert.equal(cancel.kind === "conflict" && cancel.order.status, "PREPARING");
  const ready = await to("READY");
  assert.ok(ready.kind === "moved" && ready.order.ready_at, "ready_at is set");
  assert.deepEqual(ready.kind === "moved" && ready.order, await orders.get(order.order_id));
  assert.equal((await to("READY")).kind, "already");
  assert.equal((await to("PREPARING")).kind, "moved", "a recall");
  assert.equal((await to("READY")).kind, "moved");
  assert.equal((await to("COLLECTED")).kind, "moved");
  assert.equal((await to("PREPARING")).kind, "conflict");
  assert.equal((await to("COLLECTED")).kind, "already");
  assert.equal(
    (await orders.move({ orderId: "nobody", to: "READY", by: "staff" })).kind,
    "missing",
  );

  const events = await drainOutbox(outbox);
  assert.deepEqual(
    events.map((e) => [e.type, e.body.previous, e.body.status]),
    [
      ["OrderStatusChanged", "RESERVED", "PREPARING"],
      ["OrderStatusChanged", "PREPARING", "READY"],
      ["OrderStatusChanged", "READY", "PREPARING"],
      ["OrderStatusChanged", "PREPARING", "READY"],
      ["OrderStatusChanged", "READY", "COLLECTED"],
    ],
    "one event per move, none for a repeat or a refusal",
  );
  assert.deepEqual(events[0].body.lines, order.lines);
  assert.equal(events[0].correlationId, order.order_id);
  const collected = (await orders.get(order.order_id))!;
  assert.equal(events[4].body.changed_at, collected.updated_at);
});

storeContract(
  "move() cancels a placed or reserved order once, saying who and why",
  async ({ db }) => {
    const { orders, outbox, place } = await openOrders(db);
    const placed = await place();
    const reserved = await place(cart());
    await orders.applyResult(reservedFor(reserved));
    await drainOutbox(outbox);

    const first = await orders.move({ orderId: placed.order_id, to: "CANCELLED", by: "student" });
    assert.equal(first.kind, "moved");
    assert.equal(first.kind === "moved" && first.order.cancelled_by, "student");
    const again = await orders.move({ orderId: placed.order_id, to: "CANCELLED", by: "staff" });
    assert.equal(again.kind, "already");
    assert.equal(again.kind === "already" && again.order.cancelled_by, "student", "unchanged");
    const byStaff = await orders.move({
      orderId: reserved.order_id,
      to: "CANCELLED",
      by: "staff",
      reason: "the fryer is broken",
    });
    assert.equal(byStaff.kind, "moved");
    const stored = (await orders.get(reserved.order_id))!;
    assert.deepEqual(
      { status: stored.status, by: stored.cancelled_by, reason: stored.reason },
      { status: "CANCELLED", by: "staff", reason: "the fryer is broken" },
    );
    assert.equal(
      (await orders.move({ orderId: reserved.order_id, to: "PREPARING", by: "staff" })).kind,
      "conflict",
    );

    const events = await drainOutbox(outbox);
    assert.deepEqual(events.map((e) => e.type), ["OrderCancelled", "OrderCancelled"]);
    assert.deepEqual(events[0].body, {
      order_id: placed.order_id,
      ...request,
      cancelled_by: "student",
      previous: "PLACED",
    });
    assert.deepEqual(events[1].body, {
      order_id: reserved.order_id,
      student_id: "S1",
      lines: stored.lines,
      cancelled_by: "staff",
      reason: "the fryer is broken",
      previous: "RESERVED",
    });

    // The reservation decided before the cancel arrives changes nothing now.
    assert.equal(await orders.applyResult(reservedFor(placed)), false);
    assert.equal((await orders.get(placed.order_id))?.status, "CANCELLED");
  },
);

storeContract("released() records the stock back once", async ({ db }) => {
  const { orders, place } = await openOrders(db);
  const order = await place();
  await orders.move({ orderId: order.order_id, to: "CANCELLED", by: "student" });
  const event = { order_id: order.order_id, student_id: "S1", lines, nothing_reserved: true };
  assert.deepEqual(await orders.released(event), { kind: "released" });
  const at = (await orders.get(order.order_id))?.stock_released_at;
  assert.ok(at, "stock_released_at is set");
  assert.deepEqual(await orders.released(event), { kind: "already" }, "a replay changes nothing");
  assert.equal((await orders.get(order.order_id))?.stock_released_at, at);
  assert.deepEqual(await orders.released({ ...event, order_id: "nobody" }), { kind: "missing" });
});

storeContract("released() leaves an order that is not cancelled as it was", async ({ db }) => {
  const { orders, place } = await openOrders(db);
  const placed = await place();
  const reserved = await place();
  await orders.applyResult(reservedFor(reserved));
  for (const order of [placed, reserved]) {
    const before = await orders.get(order.order_id);
    // The answer to an order.cancelled published by hand.
    const event = { order_id: order.order_id, student_id: "S1", lines };
    assert.deepEqual(await orders.released(event), {
      kind: "not_cancelled",
      status: before?.status,
    });
    assert.deepEqual(await orders.get(order.order_id), before, "nothing changed");
    assert.equal(before?.stock_released_at, undefined);
  }
  // Cancelled later, its own release is still recorded.
  await orders.move({ orderId: reserved.order_id, to: "CANCELLED", by: "staff" });
  const event = { order_id: reserved.order_id, student_id: "S1", lines };
  assert.deepEqual(await orders.released(event), { kind: "released" });
});

storeContract(
  "reaskUnreleased() cancels again an order whose stock is not back, then waits",
  async ({ db }) => {
    const { orders, outbox, place } = await openOrders(db);
    const reserved = await place();
    await orders.applyResult(reservedFor(reserved));
    const placed = await place();
    const released = await place();
    const cancel = async (order: Order, by: "student" | "staff", reason?: string) => {
      const moved = await orders.move({ orderId: order.order_id, to: "CANCELLED", by, reason });
      return (moved as { order: Order }).order;
    };
    const lost = await cancel(reserved, "staff", "no buns");
    await cancel(placed, "student");
    await cancel(released, "student");
    await orders.released({ order_id: released.order_id, student_id: "S1", lines });
    const [firstCancel] = await drainOutbox(outbox).then((events) =>
      events.filter((e) => e.type === "OrderCancelled")
    );
    await place(); // Still PLACED: the outcome sweeper's, not this one's.
    await drainOutbox(outbox);
    const firstCancelAt = Date.parse(lost.updated_at);
    assert.deepEqual(
      await orders.reaskUnreleased(reaskAt(firstCancelAt + 29_999)),
      [],
      "not yet overdue",
    );
    // From the last cancel's deadline on, both are due; the asks after it are timed from it.
    const dueAt = Date.parse((await orders.get(placed.order_id))!.updated_at) + 30_000;
    const at = (ms: number) => reaskAt(dueAt + ms);
    const reasks = await orders.reaskUnreleased(at(0));
    assert.deepEqual(
      reasks.map(({ order, asks }) => ({ id: order.order_id, status: order.status, asks })),
      [
        { id: reserved.order_id, status: "CANCELLED", asks: 1 },
        { id: placed.order_id, status: "CANCELLED", asks: 1 },
      ],
      "the cancelled orders not released, oldest first; nothing else",
    );
    const events = await drainOutbox(outbox);
    assert.deepEqual(events.map((e) => e.type), ["OrderCancelled", "OrderCancelled"]);
    assert.deepEqual(events[0].body, firstCancel.body, "the same OrderCancelled as the cancel's");
    assert.equal(events[0].correlationId, lost.order_id);
    assert.deepEqual(events[0].body, {
      order_id: reserved.order_id,
      student_id: "S1",
      lines,
      item: "Coffee",
      qty: 1,
      cancelled_by: "staff",
      reason: "no buns",
      previous: "RESERVED",
    });
    assert.equal((events[1].body as { previous: string }).previous, "PLACED");

    assert.deepEqual(await orders.reaskUnreleased(at(9_999)), [], "10 s after ask 1");
    assert.equal((await orders.reaskUnreleased(at(10_000))).length, 2);
    assert.deepEqual(await orders.reaskUnreleased(at(29_999)), [], "20 s after ask 2");
    await orders.released({ order_id: placed.order_id, student_id: "S1", lines });
    const third = await orders.reaskUnreleased(at(30_000));
    assert.deepEqual(third.map((r) => [r.order.order_id, r.asks]), [[reserved.order_id, 3]]);
    await orders.released({ order_id: reserved.order_id, student_id: "S1", lines });
    assert.deepEqual(await orders.reaskUnreleased(at(3_600_000)), [], "released at last");
    assert.equal((await drainOutbox(outbox)).length, 3, "one OrderCancelled per ask");
    const shown = await orders.get(reserved.order_id);
    assert.deepEqual({ ...shown, stock_released_at: undefined }, {
      ...lost,
      stock_released_at: undefined,
    }, "asking changes nothing the API shows");
  },
);

storeContract(
  "replicas sweeping at once cancel each unreleased order again once",
  async ({ db, replica }) => {
    const one = await openOrders(db);
    const other = await openOrders(replica());
    const ids: string[] = [];
    for (let i = 0; i < 30; i++) {
      const order = await one.place();
      await one.orders.move({ orderId: order.order_id, to: "CANCELLED", by: "student" });
      ids.push(order.order_id);
    }
    await drainOutbox(one.outbox);
    const now = Date.now() + 60_000;
    const sweeps = await Promise.all(
      Array.from(
        { length: 6 },
        (_, i) => (i % 2 ? other : one).orders.reaskUnreleased(reaskAt(now, 10)),
      ),
    );
    const asked = sweeps.flat().map((r) => r.order.order_id);
    assert.equal(asked.length, new Set(asked).size, "no order asked about twice");
    assert.deepEqual(asked.sort(), ids.sort(), "every unreleased order asked about");
    assert.equal((await drainOutbox(one.outbox)).length, 30, "one OrderCancelled each");
  },
);

storeContract("two replicas asked for one move at once make it once", async ({ db, replica }) => {
  const one = await openOrders(db);
  const other = await openOrders(replica());
  const order = await one.place();
  await one.orders.applyResult(reservedFor(order));
  await drainOutbox(one.outbox);
  const outcomes = await Promise.all(
    Array.from({ length: 6 }, (_, i) =>
      (i % 2 ? other : one).orders.move({
        orderId: order.order_id,
        to: i < 3 ? "CANCELLED" : "PREPARING",
        by: "staff",
      })),
  );
  const moves = outcomes.filter((o) => o.kind === "moved");
  assert.equal(moves.length, 1, "one move wins");
  const won = moves[0].kind === "moved" ? moves[0].order.status : undefined;
  for (const outcome of outcomes) {
    if (outcome.kind === "moved" || outcome.kind === "missing") continue;
    assert.equal(outcome.order.status, won, "the others see the winner's move");
  }
  assert.equal((await drainOutbox(one.outbox)).length, 1, "one event");
});

/** An order made READY now, through its real moves. */
async function readyOrder(orders: OrderStore, place: () => Promise<Order>) {
  const order = await place();
  await orders.applyResult(reservedFor(order));
  await orders.move({ orderId: order.order_id, to: "PREPARING", by: "staff" });
  const ready = await orders.move({ orderId: order.order_id, to: "READY", by: "staff" });
  return (ready as { order: Order }).order;
}

storeContract("expireOverdue() expires READY orders past their window, once", async ({ db }) => {
  const { orders, outbox, place } = await openOrders(db);
  const ready = await readyOrder(orders, () => place());
  const collected = await readyOrder(orders, () => place());
  await orders.move({ orderId: collected.order_id, to: "COLLECTED", by: "staff" });
  const preparing = await place();
  await orders.applyResult(reservedFor(preparing));
  await drainOutbox(outbox);
  const readyAt = Date.parse(ready.ready_at!);

  assert.deepEqual(await orders.expireOverdue(readyAt + 59_999, 60_000, 100), [], "not yet");
  const [expired, ...more] = await orders.expireOverdue(readyAt + 60_000, 60_000, 100);
  assert.deepEqual(more, [], "only READY orders expire");
  assert.equal(expired.order_id, ready.order_id);
  assert.equal(expired.status, "EXPIRED");
  assert.deepEqual(await orders.get(ready.order_id), expired);
  assert.deepEqual(await orders.expireOverdue(readyAt + 3_600_000, 60_000, 100), [], "once");
  const events = await drainOutbox(outbox);
  assert.deepEqual(events.map((e) => [e.type, e.body.previous, e.body.status]), [
    ["OrderStatusChanged", "READY", "EXPIRED"],
  ]);
  assert.equal(
    (await orders.move({ orderId: ready.order_id, to: "COLLECTED", by: "staff" })).kind,
    "conflict",
    "too late to collect",
  );
});

storeContract(
  "expireOverdue() takes at most its limit; replicas expire each once",
  async ({ db, replica }) => {
    const one = await openOrders(db);
    const other = await openOrders(replica());
    const ready = [];
    for (let i = 0; i < 12; i++) ready.push(await readyOrder(one.orders, () => one.place()));
    await drainOutbox(one.outbox);
    const later = Date.now() + 120_000;
    const sweeps = await Promise.all(
      Array.from(
        { length: 6 },
        (_, i) => (i % 2 ? other : one).orders.expireOverdue(later, 60_000, 3),
      ),
    );
    assert.ok(
      sweeps.every((s) => s.length <= 3),
      "at most the limit each",
    );
    const rest = [
      ...await one.orders.expireOverdue(later, 60_000, 100),
      ...await other.orders.expireOverdue(later, 60_000, 100),
    ];
    const expired = [...sweeps.flat(), ...rest].map((o) => o.order_id);
    assert.equal(expired.length, new Set(expired).size, "no order expired twice");
    assert.deepEqual(expired.sort(), ready.map((o) => o.order_id).sort());
    assert.equal((await drainOutbox(one.outbox)).length, 12, "one event each");
  },
);

storeContract(
  "a batch without savepoints applies results as one at a time would",
  async ({ db }) => {
    const { orders, place } = await openOrders(db);
    const [a, b, c, d] = [
      await place(),
      await place(classic("coffee", 1, "S1")),
      await place(),
      await place(),
    ];
    const cancelled = await place();
    await orders.move({ orderId: cancelled.order_id, to: "CANCELLED", by: "student" });
    const failedFor = (order: Order) => ({
      outcome: "FAILED" as const,
      event: { order_id: order.order_id, ...request, lines, reason: "none left" },
    });
    const hand = {
      outcome: "RESERVED" as const,
      event: { order_id: "hand-1", student_id: "S3", lines: [{ item: "Salad", qty: 5 }] },
    };
    const applied = await db.transaction(async () => {
      await orders.prepareResults([a.order_id, b.order_id, "hand-1", a.order_id]);
      const moved = [
        await orders.applyResult(reservedFor(a)),
        // In the menu's spelling, which the order takes.
        await orders.applyResult({
          outcome: "RESERVED",
          event: { ...reservedFor(b).event, lines },
        }),
        await orders.applyResult(failedFor(a)),
        await orders.applyResult(hand),
        await orders.applyResult(hand),
        await orders.applyResult(failedFor(c)),
      ];
      const release = { order_id: cancelled.order_id, student_id: "S1", lines };
      assert.deepEqual(await orders.released(release), { kind: "released" });
      moved.push(await orders.applyResult(reservedFor(d)), await orders.applyResult(failedFor(d)));
      return moved;
    }, { savepoints: false });
    assert.deepEqual(applied, [true, true, false, true, false, true, true, false]);
    const after = async (order_id: string) => {
      const o = await orders.get(order_id);
      return [o?.status, o?.item, o?.reason, o?.reserved_at !== undefined].join(" ");
    };
    assert.deepEqual(await Promise.all([a, b, c, d].map((o) => after(o.order_id))), [
      "RESERVED Coffee  true",
      "RESERVED Coffee  true",
      "FAILED Coffee none left false",
      "RESERVED Coffee  true",
    ]);
    assert.equal(await after("hand-1"), "RESERVED Salad  true");
    assert.ok((await orders.get(cancelled.order_id))?.stock_released_at);
  },
);

storeContract("a batch of results that fails moves no order", async ({ db }) => {
  const { orders, place } = await openOrders(db);
  const order = await place();
  await assert.rejects(
    db.transaction(async () => {
      await orders.prepareResults([order.order_id]);
      assert.equal(await orders.applyResult(reservedFor(order)), true);
      throw new Error("a later message of the batch failed");
    }, { savepoints: false }),
    /a later message of the batch failed/,
  );
  assert.equal((await orders.get(order.order_id))?.status, "PLACED");
  assert.equal(await orders.applyResult(reservedFor(order)), true);
});
