import assert from "node:assert/strict";
import { loadConfig } from "@campus/shared/config";
import { createRouter } from "@campus/shared/http";
import { createLogger } from "@campus/shared/log";
import { openOutboxStore } from "@campus/shared/outbox_store";
import { SqliteDatabase } from "@campus/shared/sqlite";
import { EventStreamReader } from "../../../tests/event_stream_client.ts";
import { createLivePages } from "./live.ts";
import { noOrders, type Order } from "../order.ts";
import { openOrderStore } from "../order_store.ts";
import type { Board } from "./board.ts";
import type { Menu } from "./stock_view.ts";
import type { OrderView } from "../order_view.ts";

/** Live pages over an in-memory store, a stand-in inventory and fixed queue depths. */
async function setup(levels: { item: string; quantity: number }[] | Error = [
  { item: "Coffee", quantity: 100 },
]) {
  const db = SqliteDatabase.open(":memory:", "order");
  const orders = await openOrderStore(db, await openOutboxStore(db));
  const log = createLogger("test", "error");
  const live = createLivePages({
    config: loadConfig("order", { MENU: "Coffee=100,Tea=5" }),
    orders,
    log,
    feed: false,
    queueDepths: (queues) =>
      Promise.resolve(new Map(queues.map((queue) => [queue, queue.endsWith("_dlq") ? 1 : 0]))),
    fetch: () =>
      levels instanceof Error ? Promise.reject(levels) : Promise.resolve(Response.json(levels)),
  });
  const handle = createRouter(live.routes, log);
  const get = (path: string) => handle(new Request(`http://order${path}`));
  /** Places one order, as `POST /order` would. */
  const place = async (request: { item: string; qty: number; student_id: string }) => {
    const lines = [{ item: request.item, qty: request.qty }];
    const [placement] = await orders.placeAll([{ request: { ...request, lines } }]);
    return (placement as { order: Order }).order;
  };
  return { orders, place, live, get };
}

Deno.test("GET /events sends the menu and the student's orders, then their changes", async () => {
  const { place, live, get } = await setup();
  const earlier = await place({ item: "Coffee", qty: 1, student_id: "S1" });
  await place({ item: "Coffee", qty: 1, student_id: "S2" });
  const res = await get("/events?student_id=S1");
  assert.equal(res.headers.get("content-type"), "text/event-stream; charset=utf-8");
  const stream = new EventStreamReader(res);
  try {
    const menu = (await stream.next("the menu", (e) => e.event === "menu")).data as Menu;
    assert.deepEqual(menu.items.map((i) => i.item), ["Coffee", "Tea"]);
    const snapshot = (await stream.next("the orders", (e) => e.event === "orders"))
      .data as OrderView[];
    assert.deepEqual(snapshot.map((o) => o.order_id), [earlier.order_id], "S1's orders only");
    // Stock never read yet is read as the stream opens; the levels follow as a new menu.
    const fresh = await stream.next("the menu read from inventory", (e) => e.event === "menu");
    assert.deepEqual(fresh.data, { items: [{ item: "Coffee", quantity: 100 }], available: true });

    live.heard({
      routingKey: "inventory.failed",
      body: { order_id: "other", item: "Tea", qty: 1, student_id: "S2", reason: "none left" },
    });
    live.heard({
      routingKey: "inventory.reserved",
      body: { order_id: earlier.order_id, item: "Coffee", qty: 1, student_id: "S1" },
    });
    const update = (await stream.next("S1's order update", (e) => e.event === "order"))
      .data as OrderView;
    assert.equal(update.order_id, earlier.order_id, "another student's result is not sent");
    assert.equal(update.status, "RESERVED");
    assert.equal(
      update.message,
      `Hi S1, your order of 1 x Coffee is confirmed (order ${earlier.order_id}).`,
    );
  } finally {
    await live.stop();
  }
  assert.ok(await stream.ended(), "stop() ends the open stream");
  assert.equal((await get("/events")).status, 503, "no new streams once stopping");
});

Deno.test("GET /events refuses an overlong student_id naming it", async () => {
  const { live, get } = await setup();
  const res = await get(`/events?student_id=${"x".repeat(101)}`);
  assert.equal(res.status, 400);
  assert.equal((await res.json()).details[0].field, "student_id");
  await live.stop();
});

Deno.test("GET /board/events sends counts, latest orders, stock and queue depths", async () => {
  const { orders, place, live, get } = await setup();
  const placed = await place({ item: "Coffee", qty: 2, student_id: "S1" });
  const stream = new EventStreamReader(await get("/board/events"));
  try {
    const board = (await stream.next("a board with stock", (e) => {
      return e.event === "board" && (e.data as Board).stock.available;
    })).data as Board;
    assert.deepEqual(board.counts, { ...noOrders(), PLACED: 1 });
    assert.deepEqual(board.latest.map((o) => o.order_id), [placed.order_id]);
    assert.deepEqual(board.stock.items, [{ item: "Coffee", quantity: 100 }]);
    assert.deepEqual(board.queues?.find((q) => q.queue === "order_placed"), {
      queue: "order_placed",
      depth: 0,
      dlq: "order_placed_dlq",
      dlq_depth: 1,
    });

    await orders.applyResult({
      outcome: "RESERVED",
      event: {
        order_id: placed.order_id,
        student_id: "S1",
        lines: [{ item: "Coffee", qty: 2 }],
      },
    });
    live.ordersChanged();
    const next = await stream.next("a board with the order RESERVED", (e) => {
      return e.event === "board" && (e.data as Board).counts.RESERVED === 1;
    });
    assert.equal((next.data as Board).latest[0].status, "RESERVED");
  } finally {
    await live.stop();
  }
  assert.ok(await stream.ended());
});

Deno.test("GET /menu keeps the configured menu, marked unavailable, while inventory is down", async () => {
  const { live, get } = await setup(new Error("connection refused"));
  const menu = await (await get("/menu")).json() as Menu;
  assert.equal(menu.available, false);
  assert.match(menu.error ?? "", /inventory unreachable: connection refused/);
  assert.deepEqual(menu.items, [{ item: "Coffee", quantity: null }, {
    item: "Tea",
    quantity: null,
  }]);
  await live.stop();
});

Deno.test("a move made here reaches the student's stream and the board at once", async () => {
  const { place, live, get } = await setup();
  const placed = await place({ item: "Coffee", qty: 1, student_id: "S1" });
  const student = new EventStreamReader(await get("/events?student_id=S1"));
  const board = new EventStreamReader(await get("/board/events"));
  try {
    await student.next("the student's orders", (e) => e.event === "orders");
    await board.next("a first board", (e) => e.event === "board");
    const cancelled: Order = {
      ...placed,
      status: "CANCELLED",
      cancelled_by: "student",
      updated_at: new Date().toISOString(),
    };
    live.orderChanged(cancelled);
    const update = (await student.next("the cancel", (e) => e.event === "order"))
      .data as OrderView;
    assert.equal(update.order_id, placed.order_id);
    assert.equal(update.status, "CANCELLED");
    const next = await board.next("a board listing the cancelled order", (e) => {
      return e.event === "board" &&
        (e.data as Board).ended.some((o) => o.order_id === placed.order_id);
    });
    assert.equal((next.data as Board).ended[0].status, "CANCELLED");
  } finally {
    await live.stop();
  }
});

Deno.test("a kitchen move heard from another replica reaches the student's stream", async () => {
  const { place, live, get } = await setup();
  const placed = await place({ item: "Coffee", qty: 2, student_id: "S1" });
  const student = new EventStreamReader(await get("/events?student_id=S1"));
  try {
    await student.next("the student's orders", (e) => e.event === "orders");
    live.heard({
      routingKey: "order.status_changed",
      body: {
        order_id: placed.order_id,
        student_id: "S1",
        lines: [{ item: "Coffee", qty: 2 }],
        status: "READY",
        previous: "PREPARING",
        changed_at: "2026-01-05T12:00:00.000Z",
      },
    });
    const update = (await student.next("the move", (e) => e.event === "order"))
      .data as OrderView;
    assert.equal(update.status, "READY");
    assert.deepEqual(update.lines, [{ item: "Coffee", qty: 2 }]);
    assert.equal(update.updated_at, "2026-01-05T12:00:00.000Z");
  } finally {
    await live.stop();
  }
});
