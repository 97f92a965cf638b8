/**
 * `deno task bench --observe`: what watching the pipeline costs. The same round runs on a
 * fresh stack each time: plain (tracing off, nothing scraping, the default), scraped (every
 * service's `GET /metrics` fetched each second), traced (`OTEL_DENO=true`, spans exported to a
 * receiver inside the benchmark) and plain again; each measured for completed orders/s, `POST`
 * latency, CPU per order and peak memory, next to the mean of the two plain rounds.
 * @module
 */
import { SERVICE_NAMES } from "@campus/shared/topology";
import { Stack, stockLevels } from "../tests/support.ts";
import { type CollectedSpan, type SpanCollector, startSpanCollector } from "../tests/support.ts";
import { FootprintSampler } from "./footprint.ts";
import { loadRound, type RoundFigures, roundFigures } from "./round.ts";
import { MetricsScraper, type ScrapeCount } from "./metrics_scraper.ts";
import type { BenchOptions } from "./options.ts";
import { num, Progress } from "./progress.ts";
import { LOAD_GENERATOR, type MachineInfo } from "./report.ts";
import { round } from "./stats.ts";

/** How the pipeline is watched in a round. */
export type Variant = "plain" | "scraped" | "traced";

/**
 * The rounds in order. Plain runs first and last: the others are compared with the mean of the
 * two, and the two against each other show how much the machine alone moved the figures (the
 * first round of a run tends to be the slowest, whatever it measures).
 */
export const VARIANTS: readonly Variant[] = ["plain", "scraped", "traced", "plain"];

/** Orders placed on each fresh stack before the measured round, so V8 has compiled its hot code. */
export const WARM_UP_ORDERS = 1000;

/** What the span receiver got over a traced stack's life, warm-up included. */
export interface SpanCount {
  received: number;
  /** Bytes of the OTLP/JSON exports. */
  bytes: number;
  /** Spans of the traces that carry an order id, per order placed on the stack. */
  per_order: number;
  /** Spans of other traces: health checks, the benchmark's polling and listing. */
  other: number;
  /** Spans by `<service> <span name>`. */
  by_name: Record<string, number>;
}

/** One measured round. */
export interface ObserveRound extends RoundFigures {
  variant: Variant;
  warm_up: number;
  post_p50_ms: number;
  /** The scrapes of the measured round (scraped only). */
  scrapes: ScrapeCount | null;
  /** The spans received (traced only). */
  spans: SpanCount | null;
}

/** What an observability comparison produced; its JSON file holds exactly this. */
export interface ObserveResult {
  date: string;
  quick: boolean;
  note: string;
  machine: MachineInfo;
  seconds: number;
  rounds: ObserveRound[];
}

/**
 * Runs a round per variant, each on a stack of its own; `running` hears of each stack while it
 * runs (so an interrupt can stop it), and of undefined after.
 */
export async function runObserveRounds(
  options: BenchOptions,
  items: readonly string[],
  stock: number,
  running: (stack: Stack | undefined) => void = () => {},
): Promise<ObserveRound[]> {
  const rounds: ObserveRound[] = [];
  for (const [index, variant] of VARIANTS.entries()) {
    const progress = new Progress(labelOf(VARIANTS, index));
    progress.update("starting a private broker and the services");
    const collector = variant === "traced" ? startSpanCollector() : undefined;
    try {
      const stack = await Stack.start({
        menu: Object.fromEntries(items.map((item) => [item, stock])),
        env: collector
          ? {
            OTEL_DENO: "true",
            OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
            OTEL_EXPORTER_OTLP_ENDPOINT: collector.endpoint,
          }
          // Off whatever the shell running the benchmark says.
          : { OTEL_DENO: "false" },
      });
      running(stack);
      try {
        rounds.push(await measure(stack, { variant, items, options, progress, collector }));
      } finally {
        running(undefined);
        await stack.dispose();
      }
    } finally {
      await collector?.close();
    }
    const r = rounds[rounds.length - 1];
    progress.done(
      `${num(r.completed_per_s)} completed orders/s, POST p99 ${num(r.post_p99_ms, 1)} ms, ` +
        `${num(r.cpu_per_order_ms.pipeline, 2)} ms CPU per order` +
        (r.variant === "plain" ? "" : `; ${observedCell(r)}`) +
        (r.ok ? "" : `; FAILED: ${r.problems.join("; ")}`),
    );
  }
  return rounds;
}

interface RoundSettings {
  variant: Variant;
  items: readonly string[];
  options: BenchOptions;
  progress: Progress;
  collector?: SpanCollector;
}

async function measure(stack: Stack, settings: RoundSettings): Promise<ObserveRound> {
  const { variant, items, options, progress, collector } = settings;
  const concurrency = Math.max(...options.concurrency);
  const warmUp = Math.min(WARM_UP_ORDERS, options.orders);
  const stockBefore = await stockLevels(stack);
  const load = (count: number, studentId: string) =>
    loadRound(stack, progress, { count, concurrency, studentId, items });
  const warmed = await load(warmUp, `observe-${variant}-warm-up`);

  const brokerPid = await stack.backend.pid("broker");
  const sampler = new FootprintSampler(async () => ({
    ...Object.fromEntries(
      await Promise.all(SERVICE_NAMES.map(async (s) => [s, await stack.backend.pid(s)])),
    ),
    broker: brokerPid,
    [LOAD_GENERATOR]: Deno.pid,
  }));
  const scraper = variant === "scraped"
    ? new MetricsScraper(SERVICE_NAMES.map((s) => stack.url(s, "/metrics")))
    : undefined;
  let scrapes: ScrapeCount | null = null;
  try {
    await sampler.start();
    scraper?.start();
    const run = await load(options.orders, `observe-${variant}`);
    scrapes = (await scraper?.stop()) ?? null;
    const placed = [...warmed.placement.accepted, ...run.placement.accepted];
    // A traced service exports the round's last spans after it: that CPU belongs to the round.
    if (collector) progress.update("waiting for the last spans");
    const spans = collector
      ? countSpans(await settledSpans(collector, placed.length), placed.length, collector.bytes())
      : null;
    const { figures, summary } = await roundFigures(stack, progress, run, await sampler.stop(), {
      stockBefore,
      orderIds: placed.map((o) => o.order_id),
      problems: [
        ...(scrapes?.failed ? [`${scrapes.failed} scrapes failed: ${scrapes.failures[0]}`] : []),
        ...(spans && spans.per_order === 0 ? ["no order's span arrived: tracing did not run"] : []),
      ],
    });
    return {
      ...figures,
      variant,
      warm_up: warmUp,
      post_p50_ms: summary.post.p50_ms,
      scrapes,
      spans,
    };
  } finally {
    await scraper?.stop();
    await sampler.stop().catch(() => {});
  }
}

/**
 * The spans once every order's trace is complete (each span name of the orders' traces seen
 * once per order), or once no export has arrived for `quietMs`: the services export in
 * batches, and on a busy machine the last ones come several seconds after the round ended.
 */
async function settledSpans(
  collector: SpanCollector,
  orders: number,
  quietMs = 15_000,
): Promise<CollectedSpan[]> {
  const deadline = performance.now() + 120_000;
  let count = -1;
  let changedAt = performance.now();
  while (performance.now() - changedAt < quietMs && performance.now() < deadline) {
    if (collector.spans().length !== count) {
      count = collector.spans().length;
      changedAt = performance.now();
      if (complete(collector.spans(), orders)) break;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return collector.spans();
}

/** Whether each span name of the orders' traces has been seen once per order. */
export function complete(spans: readonly CollectedSpan[], orders: number): boolean {
  const ordered = new Set(spans.filter((s) => s.attributes.order_id).map((s) => s.traceId));
  const byName = new Map<string, number>();
  for (const s of spans) {
    if (ordered.has(s.traceId)) byName.set(s.name, (byName.get(s.name) ?? 0) + 1);
  }
  return byName.size > 0 && [...byName.values()].every((n) => n >= orders);
}

/** Spans of traces that carry an order id (the orders' own) against the rest, per name. */
export function countSpans(
  spans: readonly CollectedSpan[],
  orders: number,
  bytes: number,
): SpanCount {
  const ordered = new Set(spans.filter((s) => s.attributes.order_id).map((s) => s.traceId));
  const ofOrders = spans.filter((s) => ordered.has(s.traceId)).length;
  const byName: Record<string, number> = {};
  for (const s of spans) {
    byName[`${s.service} ${s.name}`] = (byName[`${s.service} ${s.name}`] ?? 0) + 1;
  }
  return {
    received: spans.length,
    bytes,
    per_order: orders > 0 ? round(ofOrders / orders, 2) : 0,
    other: spans.length - ofOrders,
    by_name: Object.fromEntries(Object.entries(byName).sort(([a], [b]) => a.localeCompare(b))),
  };
}

/** `plain`, or `plain again` when an earlier round measured the same variant. */
function labelOf(variants: readonly Variant[], index: number): string {
  const variant = variants[index];
  return variants.slice(0, index).includes(variant) ? `${variant} again` : variant;
}

/** The figures each row is compared on. */
interface Compared {
  completed_per_s: number;
  post_p50_ms: number;
  post_p99_ms: number;
  pipeline_ms: number;
  /** Peak RSS of the three services together. */
  services_rss_mb: number;
}

function comparedOf(r: ObserveRound): Compared {
  return {
    completed_per_s: r.completed_per_s,
    post_p50_ms: r.post_p50_ms,
    post_p99_ms: r.post_p99_ms,
    pipeline_ms: r.cpu_per_order_ms.pipeline,
    services_rss_mb: SERVICE_NAMES.reduce((sum, s) => sum + (r.footprint[s]?.peak_rss_mb ?? 0), 0),
  };
}

/** The mean of the plain rounds' figures; undefined without a plain round. */
export function plainMean(rounds: readonly ObserveRound[]): Compared | undefined {
  const plain = rounds.filter((r) => r.variant === "plain").map(comparedOf);
  if (plain.length === 0) return undefined;
  const mean = (key: keyof Compared) => plain.reduce((t, c) => t + c[key], 0) / plain.length;
  return {
    completed_per_s: mean("completed_per_s"),
    post_p50_ms: mean("post_p50_ms"),
    post_p99_ms: mean("post_p99_ms"),
    pipeline_ms: mean("pipeline_ms"),
    services_rss_mb: mean("services_rss_mb"),
  };
}

/** `value` next to the plain rounds' mean: ` (+3.1 %)`, ` (−12.0 %)`. */
export function change(value: number, plain: number | undefined): string {
  if (plain === undefined || !(plain > 0) || !Number.isFinite(value)) return "";
  const pct = (100 * (value - plain)) / plain;
  return ` (${pct < 0 ? "−" : "+"}${num(Math.abs(pct), 1)} %)`;
}

/** The heading that starts the observability section of `bench/BASELINE.md`. */
export const OBSERVE_HEADING = "## Observability cost";

/** The comparison as the `## Observability cost` section of a report. */
export function observeMarkdown(result: ObserveResult): string {
  const m = result.machine;
  const plain = plainMean(result.rounds);
  const first = result.rounds[0];
  const lines = [
    OBSERVE_HEADING,
    "",
    `${result.date}${result.quick ? " (quick)" : ""}: ${m.cores} cores (${m.cpu}), ` +
    `Deno ${m.deno}, commit ${m.commit}; load average ${m.load_at_start.toFixed(2)} at start. ` +
    `Each round: a fresh stack (SQLite, one broker node), ${num(first?.warm_up ?? 0)} orders ` +
    `to warm up, then ${num(first?.orders ?? 0)} orders at concurrency ${first?.concurrency}, ` +
    "measured; `deno task bench --observe`.",
    "",
  ];
  if (result.note) lines.push(`> ${result.note}`, "");
  lines.push(
    "| Variant | Completed orders/s | POST p50 | POST p99 | CPU/order: order | inventory | notification | broker | pipeline | Peak RSS: order / inventory / notification | Observed | Ledger |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
  );
  const ms = (v: number | undefined, digits: number) =>
    v === undefined ? "–" : `${num(v, digits)} ms`;
  for (const [index, r] of result.rounds.entries()) {
    const c = comparedOf(r);
    const cpu = r.cpu_per_order_ms;
    const rss = SERVICE_NAMES.map((s) => num(r.footprint[s]?.peak_rss_mb ?? NaN)).join(" / ");
    const label = labelOf(result.rounds.map((round) => round.variant), index);
    lines.push(
      `| ${label} | ${num(c.completed_per_s)}${
        change(c.completed_per_s, plain?.completed_per_s)
      } | ` +
        `${ms(c.post_p50_ms, 1)}${change(c.post_p50_ms, plain?.post_p50_ms)} | ` +
        `${ms(c.post_p99_ms, 1)}${change(c.post_p99_ms, plain?.post_p99_ms)} | ` +
        `${ms(cpu.order, 3)} | ${ms(cpu.inventory, 3)} | ${ms(cpu.notification, 3)} | ` +
        `${ms(cpu.broker, 3)} | ${ms(c.pipeline_ms, 3)}${
          change(c.pipeline_ms, plain?.pipeline_ms)
        } | ` +
        `${rss} MB${change(c.services_rss_mb, plain?.services_rss_mb)} | ${observedCell(r)} | ` +
        `${r.ok ? "ok" : `**${r.problems.join("; ")}**`} |`,
    );
  }
  lines.push(
    "",
    "_plain_: tracing off and nothing scraping, as the services run by default. _scraped_: " +
      "`GET /metrics` of the three services fetched every second through the measured round, " +
      "as Prometheus would. _traced_: `OTEL_DENO=true`, every span exported over OTLP/HTTP " +
      "(JSON) to a receiver in the benchmark process, which counts them; its spans per order " +
      "count the traces that carry an order id (warm-up included), the rest are health checks " +
      "and the benchmark's own polling. In brackets: the change against the mean of the two " +
      "_plain_ rounds, the first and the last of the run (peak RSS: of the three services " +
      "together); the two _plain_ rows show how far the machine alone moved the figures, and " +
      "a change no larger than theirs is noise. CPU per order counts each process over the measured " +
      "round (for _traced_ until its last spans arrived); the load generator, scraper and " +
      "receiver run in the benchmark process and are left out, but share the same 2 cores.",
    "",
  );
  return lines.join("\n");
}

function observedCell(r: ObserveRound): string {
  if (r.scrapes) {
    return `${num(r.scrapes.scrapes)} scrapes, ` +
      (r.scrapes.failed ? `**${r.scrapes.failed} failed**` : "all 200");
  }
  if (r.spans) {
    const { received, per_order, bytes } = r.spans;
    return `${num(received)} spans, ${num(per_order, 1)} per order, ${num(bytes / 2 ** 20, 1)} MB`;
  }
  return "–";
}
