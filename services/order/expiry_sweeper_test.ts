import assert from "node:assert/strict";
import type { Logger } from "@campus/shared/log";
import { waitFor } from "../../tests/poll.ts";
import { newOrder, type Order } from "./order.ts";
import { expiryInterval, ExpirySweeper } from "./expiry_sweeper.ts";

const lines = [{ item: "Coffee", qty: 1 }];

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

Deno.test("expiryInterval() is half the window, at most 5 s: expiry within 10 s of its end", () => {
  assert.deepEqual([100, 2000, 10_000, 1_800_000].map(expiryInterval), [50, 1000, 5000, 5000]);
});

Deno.test("the expiry loop lives through failing sweeps, reports expiries, and stops", async () => {
  const { log, lines: logged } = recordingLog();
  const order: Order = {
    ...newOrder({ student_id: "S1", lines }, new Date().toISOString()),
    status: "EXPIRED",
  };
  const calls: { now: number; windowMs: number; limit: number }[] = [];
  let failures = 2;
  const heard: Order[][] = [];
  const sweeper = new ExpirySweeper({
    orders: {
      expireOverdue: (now, windowMs, limit) => {
        calls.push({ now, windowMs, limit });
        if (failures-- > 0) return Promise.reject(new Error("connection refused"));
        return Promise.resolve(calls.length === 3 ? [order] : []);
      },
    },
    windowMs: 200,
    log,
    onExpired: (expired) => {
      heard.push([...expired]);
      throw new Error("a listener that throws stops nothing");
    },
  });
  sweeper.start();
  try {
    await waitFor(() => calls.length >= 5, { what: "sweeps to go on after the failures" });
  } finally {
    await sweeper.stop();
  }
  assert.deepEqual(logged.map((l) => [l.level, l.msg]), [
    ["error", "cannot expire uncollected orders, retrying"],
    ["info", "order expired, not collected in time"],
    ["error", "expiry listener failed"],
    ["info", "uncollected orders are expired again"],
  ]);
  assert.deepEqual(heard.map((batch) => batch.map((o) => o.order_id)), [[order.order_id]]);
  assert.deepEqual([calls[0].windowMs, calls[0].limit], [200, 100]);
});
