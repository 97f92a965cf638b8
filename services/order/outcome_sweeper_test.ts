import assert from "node:assert/strict";
import type { Logger } from "@campus/shared/log";
import { SqliteDatabase } from "@campus/shared/sqlite";
import { openOutboxStore } from "@campus/shared/outbox_store";
import { drainOutbox } from "@campus/testing/store_contract";
import { waitFor } from "../../tests/poll.ts";
import { newOrder, type Reask, type ReaskRequest } from "./order.ts";
import { openOrderStore } from "./order_store.ts";
import { nextAskAfter, OutcomeSweeper, sweepInterval } from "./outcome_sweeper.ts";

const request = { item: "Coffee", qty: 1, student_id: "S1", lines: [{ item: "Coffee", qty: 1 }] };

/** A logger that keeps its lines. */
function recordingLog() {
  const lines: { level: string; msg: string; fields?: Record<string, unknown> }[] = [];
  const at = (level: string) => (msg: string, fields?: Record<string, unknown>) =>
    void lines.push({ level, msg, fields });
  const log: Logger = {
    debug: at("debug"),
    info: at("info"),
    warn: at("warn"),
    error: at("error"),
  };
  return { log, lines };
}

Deno.test("nextAskAfter() doubles the wait, up to 16 timeouts apart", () => {
  assert.deepEqual(
    [1, 2, 3, 4, 5, 9].map((asks) => nextAskAfter(1000, asks)),
    [2000, 4000, 8000, 16000, 16000, 16000],
  );
});

Deno.test("sweepInterval() is a quarter of the timeout, between 100 ms and 5 s", () => {
  assert.deepEqual([100, 2000, 30_000, 600_000].map(sweepInterval), [100, 500, 5000, 5000]);
});

Deno.test("sweep() asks again about a late order and says so", async () => {
  const db = SqliteDatabase.open(":memory:", "sweeper");
  try {
    const outbox = await openOutboxStore(db);
    const orders = await openOrderStore(db, outbox);
    const [placed] = await orders.placeAll([{ request }]);
    const order = (placed as { order: { order_id: string; created_at: string } }).order;
    await drainOutbox(outbox);
    const { log, lines } = recordingLog();
    const heard: Reask[][] = [];
    let now = Date.parse(order.created_at);
    const sweeper = new OutcomeSweeper({
      orders,
      timeoutMs: 1000,
      log,
      onReasked: (reasks) => heard.push([...reasks]),
      now: () => now,
    });
    assert.deepEqual(await sweeper.sweep(), [], "not late yet");
    now += 1000;
    const [reask] = await sweeper.sweep();
    assert.equal(reask.order.order_id, order.order_id);
    assert.deepEqual(heard.map((r) => r.length), [1]);
    assert.deepEqual(lines.map((l) => [l.level, l.msg, l.fields?.order_id]), [
      ["warn", "no outcome yet, asking inventory again", order.order_id],
    ]);
    assert.deepEqual((await drainOutbox(outbox)).map((e) => e.correlationId), [order.order_id]);
    now += 1999;
    assert.deepEqual(await sweeper.sweep(), [], "the next ask waits twice the timeout");
    now += 1;
    assert.equal((await sweeper.sweep())[0]?.asks, 2);
  } finally {
    await db.close();
  }
});

Deno.test("the loop lives through failing sweeps, logs each cause once, and stops", async () => {
  const { log, lines } = recordingLog();
  const order = newOrder(request, new Date().toISOString());
  const calls: ReaskRequest[] = [];
  let failures = 3;
  const sweeper = new OutcomeSweeper({
    orders: {
      reaskOverdue: (req) => {
        calls.push(req);
        if (failures-- > 0) return Promise.reject(new Error("connection refused"));
        return Promise.resolve(calls.length === 4 ? [{ order, asks: 1 }] : []);
      },
    },
    timeoutMs: 400,
    log,
  });
  sweeper.start();
  try {
    await waitFor(() => calls.length >= 6, { what: "sweeps to go on after the failures" });
  } finally {
    await sweeper.stop();
  }
  assert.deepEqual(
    lines.map((l) => [l.level, l.msg]),
    [
      ["error", "cannot ask again about late orders, retrying"],
      ["warn", "no outcome yet, asking inventory again"],
      ["info", "late orders are asked about again"],
    ],
  );
  assert.equal(lines[0].fields?.error, "connection refused");
  assert.equal(calls[0].timeoutMs, 400);
  assert.equal(calls[0].nextAskAfter(1), 800);
});

Deno.test("a full batch is followed by the next sweep at once", async () => {
  const { log } = recordingLog();
  const order = newOrder(request, new Date().toISOString());
  let left = 5;
  const sizes: number[] = [];
  const sweeper = new OutcomeSweeper({
    orders: {
      reaskOverdue: ({ limit }) => {
        const n = Math.min(limit, left);
        left -= n;
        sizes.push(n);
        return Promise.resolve(Array.from({ length: n }, () => ({ order, asks: 1 })));
      },
    },
    // An hour between sweeps: only a full batch can bring the next one in time.
    timeoutMs: 3_600_000,
    batchSize: 2,
    log,
  });
  sweeper.start();
  try {
    await waitFor(() => sizes.length >= 3, { what: "three sweeps in a row" });
  } finally {
    await sweeper.stop();
  }
  assert.deepEqual(sizes, [2, 2, 1]);
});
