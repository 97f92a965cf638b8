import assert from "node:assert/strict";
import type { Logger } from "@campus/shared/log";
import { SqliteDatabase } from "@campus/shared/sqlite";
import { openOutboxStore } from "@campus/shared/outbox_store";
import { drainOutbox } from "@campus/testing/store_contract";
import type { Order, Reask } from "./order.ts";
import { openOrderStore } from "./order_store.ts";
import { ReleaseSweeper } from "./release_sweeper.ts";

const request = { item: "Coffee", qty: 1, student_id: "S1", lines: [{ item: "Coffee", qty: 1 }] };

Deno.test("sweep() cancels again an order whose stock is not back, and says so", async () => {
  const db = SqliteDatabase.open(":memory:", "sweeper");
  try {
    const outbox = await openOutboxStore(db);
    const orders = await openOrderStore(db, outbox);
    const [placed] = await orders.placeAll([{ request }]);
    const { order_id } = (placed as { order: Order }).order;
    const moved = await orders.move({ orderId: order_id, to: "CANCELLED", by: "student" });
    const cancelled = (moved as { order: Order }).order;
    await drainOutbox(outbox);
    const lines: [string, string, unknown][] = [];
    const at = (level: string) => (msg: string, fields?: Record<string, unknown>) =>
      void lines.push([level, msg, fields?.order_id]);
    const log: Logger = {
      debug: at("debug"),
      info: at("info"),
      warn: at("warn"),
      error: at("error"),
    };
    const heard: Reask[][] = [];
    let now = Date.parse(cancelled.updated_at);
    const sweeper = new ReleaseSweeper({
      orders,
      timeoutMs: 1000,
      log,
      onReasked: (reasks) => heard.push([...reasks]),
      now: () => now,
    });
    assert.deepEqual(await sweeper.sweep(), [], "not late yet");
    now += 1000;
    assert.deepEqual((await sweeper.sweep()).map((r) => r.order.order_id), [order_id]);
    assert.deepEqual(heard.map((r) => r.length), [1]);
    assert.deepEqual(lines, [
      ["warn", "cancelled order's stock not released yet, cancelling again", order_id],
    ]);
    assert.deepEqual((await drainOutbox(outbox)).map((e) => [e.type, e.correlationId]), [
      ["OrderCancelled", order_id],
    ]);
    now += 1999;
    assert.deepEqual(await sweeper.sweep(), [], "the next ask waits twice the timeout");
    await orders.released({ order_id, student_id: "S1", lines: request.lines });
    now += 1;
    assert.deepEqual(await sweeper.sweep(), [], "released: never asked again");
  } finally {
    await db.close();
  }
});
