import assert from "node:assert/strict";
import { createLogger } from "@campus/shared/log";
import { dlqOf, WORK_QUEUES } from "@campus/shared/topology";
import { waitFor } from "../../../tests/poll.ts";
import { type Board, BoardView, ENDED_SHOWN, TICKETS_PER_COLUMN } from "./board.ts";
import { noOrders, type Order, type OrderQuery, type OrderStatus } from "../order.ts";
import type { OrderStore } from "../order_store.ts";
import { StockView } from "./stock_view.ts";

/** An order at `status`, placed `minute` minutes past noon. */
function orderAt(id: string, status: OrderStatus, minute = 0): Order {
  const at = `2026-01-05T12:${String(minute).padStart(2, "0")}:00.000Z`;
  return {
    order_id: id,
    student_id: "S1",
    lines: [{ item: "Burger", qty: 2 }, { item: "Coffee", qty: 1 }],
    status,
    created_at: at,
    updated_at: at,
  };
}

/**
 * A board over a store of `stored` orders (oldest first) that fails while `down` is set, and
 * queue depths from `depths`.
 */
function setup(
  depths: (queues: readonly string[]) => Map<string, number>,
  stored: Order[] = [orderAt("p1", "PLACED")],
) {
  const state = { down: false, reads: 0 };
  const refused = () => Promise.reject(new Error("the database refuses connections"));
  const orders = {
    statusCounts: () => {
      if (state.down) return refused();
      const counts = noOrders();
      for (const order of stored) counts[order.status]++;
      return Promise.resolve(counts);
    },
    latest: (limit: number) =>
      state.down ? refused() : Promise.resolve([...stored].reverse().slice(0, limit)),
    async *batches(query: OrderQuery = {}) {
      if (state.down) await refused();
      const found = stored.filter((o) => !query.status || o.status === query.status)
        .slice(0, query.limit);
      // Two orders a page: the board reads pages only as far as it needs.
      for (let i = 0; i < found.length; i += 2) {
        state.reads++;
        yield found.slice(i, i + 2);
      }
    },
  } as unknown as OrderStore;
  const lines: Record<string, unknown>[] = [];
  const log = createLogger("order", "info", (text) => {
    for (const line of text.trimEnd().split("\n")) lines.push(JSON.parse(line));
  });
  const stock = new StockView({
    inventoryUrl: "http://inventory",
    menu: { Coffee: 100 },
    log,
    onChange: () => {},
    fetch: () => Promise.resolve(Response.json([{ item: "Coffee", quantity: 100 }])),
  });
  const boards: Board[] = [];
  const board = new BoardView({
    orders,
    stock,
    log,
    queueDepths: (queues) => Promise.resolve(depths(queues)),
    onChange: (b) => boards.push(b),
    intervalMs: 10,
  });
  return { state, board, boards, lines, stock };
}

const everyQueue = (queues: readonly string[]) => new Map(queues.map((q) => [q, 2]));

Deno.test("a board that cannot be built is logged once and tried again until it can", async () => {
  const { state, board, boards, lines } = setup(everyQueue);
  state.down = true;
  assert.equal(await board.refresh(), undefined, "refresh() resolves, without a board");
  const release = board.watch();
  try {
    // The periodic refresh keeps failing meanwhile; each failure is caught, none ends the test.
    await waitFor(() => lines.some((l) => l.msg === "board not built; trying again with backoff"), {
      what: "the failure to be logged",
    });
    assert.equal(boards.length, 0, "no board while the store refuses");
    state.down = false;
    await waitFor(() => boards.length > 0, { what: "a board once the store answers again" });
    assert.deepEqual(boards[0].counts, { ...noOrders(), PLACED: 1 });
    const failures = lines.filter((l) => l.msg === "board not built; trying again with backoff");
    assert.equal(failures.length, 1, "said once for the whole outage, not at each retry");
    assert.equal(failures[0].error, "the database refuses connections");
    assert.ok(lines.some((l) => l.msg === "board built again"));
  } finally {
    release();
  }
});

Deno.test("the board shows every work queue's and DLQ's depth, read without declaring", async () => {
  const asked: string[][] = [];
  const { board } = setup((queues) => {
    asked.push([...queues]);
    return everyQueue(queues);
  });
  const built = await board.refresh();
  assert.deepEqual(
    built?.queues,
    WORK_QUEUES.map(({ name }) => ({ queue: name, depth: 2, dlq: dlqOf(name), dlq_depth: 2 })),
  );
  assert.deepEqual(asked, [WORK_QUEUES.flatMap(({ name }) => [name, dlqOf(name)])]);
});

Deno.test("queue depths the broker did not say show as unavailable, naming the queues", async () => {
  const { board } = setup((queues) => {
    const depths = everyQueue(queues);
    depths.delete("order_placed_dlq");
    return depths;
  });
  const built = await board.refresh();
  assert.equal(built?.queues, null);
  assert.equal(built?.queues_error, "the broker did not say the depth of order_placed_dlq");
  const none = await setup(() => new Map()).board.refresh();
  assert.equal(none?.queues_error, "the broker cannot be asked just now");
});

Deno.test("the board has a column of tickets per kitchen step, oldest first, with lines", async () => {
  const stored = [
    orderAt("r1", "RESERVED", 1),
    orderAt("p1", "PREPARING", 2),
    orderAt("r2", "RESERVED", 3),
    orderAt("y1", "READY", 4),
    orderAt("c1", "COLLECTED", 5),
    orderAt("f1", "FAILED", 6),
  ];
  const { board } = setup(everyQueue, stored);
  const built = await board.refresh();
  const ids = (column: "RESERVED" | "PREPARING" | "READY") =>
    built?.tickets[column].map((o) => o.order_id);
  assert.deepEqual(ids("RESERVED"), ["r1", "r2"]);
  assert.deepEqual(ids("PREPARING"), ["p1"]);
  assert.deepEqual(ids("READY"), ["y1"]);
  assert.deepEqual(built?.tickets.READY[0].lines, stored[3].lines);
  assert.equal(built?.counts.COLLECTED, 1);
  assert.deepEqual(built?.ended, [], "nothing cancelled or expired yet");
});

Deno.test("a column shows at most its limit of tickets, read no further than needed", async () => {
  const stored = Array.from(
    { length: TICKETS_PER_COLUMN + 7 },
    (_, i) => orderAt(`r${i}`, "RESERVED", i % 60),
  );
  const { board, state } = setup(everyQueue, stored);
  const built = await board.refresh();
  assert.equal(built?.tickets.RESERVED.length, TICKETS_PER_COLUMN);
  assert.equal(built?.tickets.RESERVED[0].order_id, "r0", "the oldest ticket first");
  assert.equal(built?.counts.RESERVED, TICKETS_PER_COLUMN + 7, "the count says how many wait");
  assert.equal(state.reads, TICKETS_PER_COLUMN / 2);
});

Deno.test("cancelled and expired orders are listed newest first, from moves and the store", async () => {
  const stored = [orderAt("x1", "EXPIRED", 1), orderAt("r1", "RESERVED", 2)];
  const { board } = setup(everyQueue, stored);
  // Heard from another replica's cancel: the feed's cancel has no time of its own.
  board.orderChanged({ ...orderAt("c1", "CANCELLED", 3), updated_at: undefined });
  board.orderChanged({ ...orderAt("c2", "CANCELLED", 0), updated_at: "2026-01-05T12:00:30Z" });
  board.orderChanged(orderAt("p1", "PREPARING", 4));
  const built = await board.refresh();
  assert.deepEqual(built?.ended.map((o) => o.order_id), ["c1", "x1", "c2"]);
  assert.ok(built?.ended[0].updated_at, "a cancel without a time ends when it was heard");

  for (let i = 0; i < ENDED_SHOWN + 3; i++) board.orderChanged(orderAt(`c${i + 10}`, "CANCELLED"));
  assert.equal((await board.refresh())?.ended.length, ENDED_SHOWN, "the list is bounded");
});
