import assert from "node:assert/strict";
import { createLogger } from "@campus/shared/log";
import { dlqOf, WORK_QUEUES } from "@campus/shared/topology";
import { waitFor } from "../../../tests/poll.ts";
import { type Board, BoardView } from "./board.ts";
import type { OrderStore } from "../order_store.ts";
import { StockView } from "./stock_view.ts";

/** A board over a store that fails while `down` is set, and queue depths from `depths`. */
function setup(depths: (queues: readonly string[]) => Map<string, number>) {
  const state = { down: false };
  const refused = () => Promise.reject(new Error("the database refuses connections"));
  const orders = {
    statusCounts: () =>
      state.down ? refused() : Promise.resolve({ PLACED: 1, RESERVED: 0, FAILED: 0 }),
    latest: () => state.down ? refused() : Promise.resolve([]),
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
  return { state, board, boards, lines };
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
    assert.deepEqual(boards[0].counts, { PLACED: 1, RESERVED: 0, FAILED: 0 });
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
