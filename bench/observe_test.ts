/** Tests of the observability comparison's pure parts: spans counted, the section written. */
import assert from "node:assert/strict";
import type { CollectedSpan } from "../tests/support.ts";
import type { Footprint } from "./footprint.ts";
import type { MachineInfo } from "./report.ts";
import {
  change,
  complete,
  countSpans,
  OBSERVE_HEADING,
  observeMarkdown,
  type ObserveRound,
  plainMean,
  type Variant,
} from "./observe.ts";

function span(traceId: string, name: string, orderId?: string): CollectedSpan {
  return {
    service: "order",
    name,
    traceId,
    spanId: crypto.randomUUID(),
    parentSpanId: "",
    kind: 2,
    attributes: orderId ? { order_id: orderId } : {},
  };
}

Deno.test("countSpans() counts the orders' traces apart from the rest", () => {
  const spans = [
    span("t1", "POST /order", "o1"),
    span("t1", "publish order.placed", "o1"),
    span("t1", "process order_placed"),
    span("t2", "POST /order", "o2"),
    span("t3", "GET /orders"),
  ];
  const count = countSpans(spans, 2, 1234);
  assert.equal(count.received, 5);
  assert.equal(count.bytes, 1234);
  assert.equal(count.per_order, 2, "4 spans in the traces of 2 orders");
  assert.equal(count.other, 1);
  assert.deepEqual(count.by_name, {
    "order GET /orders": 1,
    "order POST /order": 2,
    "order process order_placed": 1,
    "order publish order.placed": 1,
  });
  assert.equal(countSpans([], 0, 0).per_order, 0);
});

Deno.test("complete() waits for every span name of the orders' traces once per order", () => {
  const first = [span("t1", "POST /order", "o1"), span("t1", "process order_placed")];
  const second = [span("t2", "POST /order", "o2"), span("t3", "GET /orders")];
  assert.equal(complete([...first, ...second], 2), false, "o2 is not processed yet");
  assert.equal(complete([...first, ...second, span("t2", "process order_placed")], 2), true);
  assert.equal(complete([], 0), false, "no span, no trace");
});

Deno.test("change() gives the difference from plain in percent, or nothing for plain", () => {
  assert.equal(change(110, 100), " (+10.0 %)");
  assert.equal(change(85, 100), " (−15.0 %)");
  assert.equal(change(100, undefined), "");
  assert.equal(change(NaN, 100), "");
});

const MACHINE: MachineInfo = {
  cores: 2,
  cpu: "test cpu",
  memory_gb: 4,
  os: "linux",
  deno: "2.9.6",
  v8: "15",
  load_at_start: 0.5,
  load_at_end: 1,
  commit: "abc1234",
};

function footprint(rssMb: number): Record<string, Footprint> {
  const f = (peak: number) => ({
    peak_rss_mb: peak,
    last_rss_mb: peak,
    cpu_s: 1,
    cpu_wait_s: 0,
    samples: 4,
  });
  return { order: f(rssMb), inventory: f(rssMb), notification: f(rssMb), broker: f(150) };
}

function round(variant: Variant, completed: number, pipeline: number): ObserveRound {
  return {
    variant,
    orders: 1000,
    concurrency: 64,
    warm_up: 500,
    accepted: 1000,
    errors: 0,
    completed_per_s: completed,
    post_p50_ms: 50,
    post_p99_ms: 100,
    cpu_per_order_ms: { order: 1, inventory: 0.5, notification: 0.25, broker: 0.5, pipeline },
    footprint: footprint(variant === "traced" ? 100 : 80),
    scrapes: variant === "scraped" ? { scrapes: 30, failed: 0, bytes: 1, failures: [] } : null,
    spans: variant === "traced"
      ? { received: 9012, bytes: 2 ** 20, per_order: 6, other: 12, by_name: {} }
      : null,
    ok: true,
    problems: [],
  };
}

Deno.test("plainMean() averages the plain rounds, first and last", () => {
  const mean = plainMean([round("plain", 480, 2), round("traced", 400, 3), round("plain", 520, 3)]);
  assert.equal(mean?.completed_per_s, 500);
  assert.equal(mean?.pipeline_ms, 2.5);
  assert.equal(mean?.services_rss_mb, 240);
  assert.equal(plainMean([round("traced", 400, 3)]), undefined);
});

Deno.test("observeMarkdown() writes one row per round against the plain rounds' mean", () => {
  const section = observeMarkdown({
    date: "2026-11-26T10:00:00.000Z",
    quick: false,
    note: "",
    machine: MACHINE,
    seconds: 60,
    rounds: [
      round("plain", 490, 2),
      round("scraped", 490, 2.02),
      round("traced", 400, 3),
      round("plain", 510, 2),
    ],
  });
  assert.ok(section.startsWith(`${OBSERVE_HEADING}\n`));
  assert.match(section, /500 orders to warm up, then 1,000 orders at concurrency 64/);
  const rows = section.split("\n").filter((l) => /^\| (plain|scraped|traced) /.test(l));
  assert.equal(rows.length, 4);
  assert.match(
    rows[0],
    /^\| plain \| 490 \(−2\.0 %\) \| 50\.0 ms \(\+0\.0 %\) \|.* 2\.000 ms \(\+0\.0 %\) \| 80 \/ 80 \/ 80 MB \(\+0\.0 %\) \| – \| ok \|$/,
  );
  assert.match(rows[1], /^\| scraped \| 490 \(−2\.0 %\)/);
  assert.match(rows[1], /2\.020 ms \(\+1\.0 %\)/);
  assert.match(rows[1], /30 scrapes, all 200/);
  assert.match(rows[2], /^\| traced \| 400 \(−20\.0 %\)/);
  assert.match(rows[2], /100 \/ 100 \/ 100 MB \(\+25\.0 %\)/);
  assert.match(rows[2], /9,012 spans, 6\.0 per order, 1\.0 MB/);
  assert.match(rows[3], /^\| plain again \| 510 \(\+2\.0 %\) \|/);
});

Deno.test("observeMarkdown() names a failed ledger in its row", () => {
  const failed = { ...round("traced", 400, 3), ok: false, problems: ["3 orders lost"] };
  const section = observeMarkdown({
    date: "2026-11-26T10:00:00.000Z",
    quick: true,
    note: "machine shared",
    machine: MACHINE,
    seconds: 60,
    rounds: [round("plain", 500, 2), failed],
  });
  assert.match(section, /\*\*3 orders lost\*\* \|$/m);
  assert.match(section, /^> machine shared$/m);
  assert.match(section, /\(quick\)/);
});
