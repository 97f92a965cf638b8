/** The benchmark's results: targets checked against measured values, written as JSON and Markdown. */
import { join } from "node:path";
import { SERVICE_NAMES } from "@campus/shared/topology";
import type { CeilingResult } from "./broker_ceiling.ts";
import type { BacklogResult } from "./backlog.ts";
import type { Ledger } from "../tests/support.ts";
import type { Footprint } from "./footprint.ts";
import type { LoadResult } from "./load.ts";
import type { BenchOptions } from "./options.ts";
import { num } from "./progress.ts";
import { round } from "./stats.ts";

/** The machine a run measured, so figures can be compared fairly. */
export interface MachineInfo {
  cores: number;
  cpu: string;
  memory_gb: number;
  os: string;
  deno: string;
  v8: string;
  /** 1-minute load average when the run started and when it ended; high means a busy machine. */
  load_at_start: number;
  load_at_end: number;
  commit: string;
}

/** One target of the issue next to what was measured. */
export interface TargetCheck {
  name: string;
  /** The goal in words, e.g. `≥ 2,500 orders/s`. */
  goal: string;
  /** The measured value, or null when the run did not measure it. */
  measured: number | null;
  unit: string;
  /** Whether the goal is met; null when not measured. */
  met: boolean | null;
}

/** Everything one run produced; the JSON file holds exactly this. */
export interface BenchResult {
  date: string;
  quick: boolean;
  note: string;
  machine: MachineInfo;
  options: Omit<BenchOptions, "out" | "baseline" | "note">;
  seconds: number;
  broker_ceiling: CeilingResult | null;
  end_to_end: LoadResult[];
  /** A round of carts of several lines at the highest concurrency; null in older results. */
  cart_round: LoadResult | null;
  backlog: BacklogResult | null;
  footprint: Record<string, Footprint>;
  /** CPU time per placed order, by process, over the load phases, in ms. */
  cpu_per_order_ms: Record<string, number>;
  /** Orders placed over the load phases the footprint covers. */
  orders_measured: number;
  correctness: Ledger;
  targets: TargetCheck[];
}

/** Describes the machine this process runs on. */
export async function machineInfo(): Promise<MachineInfo> {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo").catch(() => "");
  const commit = await new Deno.Command("git", {
    args: ["rev-parse", "--short", "HEAD"],
    cwd: new URL("..", import.meta.url).pathname,
    stdout: "piped",
    stderr: "null",
  }).output().then((o) => new TextDecoder().decode(o.stdout).trim()).catch(() => "");
  return {
    cores: navigator.hardwareConcurrency,
    cpu: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? "unknown",
    memory_gb: round(Deno.systemMemoryInfo().total / 2 ** 30, 1),
    os: `${Deno.build.os} ${Deno.osRelease()}`,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    load_at_start: round(Deno.loadavg()[0], 2),
    load_at_end: NaN,
    commit: commit || "unknown",
  };
}

/** The load generator's name in the footprint; it is measured but is no part of the pipeline. */
export const LOAD_GENERATOR = "bench";

/**
 * CPU milliseconds per order of each process, plus `pipeline`: the services and the broker
 * together, without the load generator.
 */
export function cpuPerOrderMs(
  footprint: Record<string, Footprint>,
  orders: number,
): Record<string, number> {
  const perOrder = (cpuS: number) => round((cpuS * 1000) / orders, 3);
  const pipeline = Object.entries(footprint)
    .filter(([name]) => name !== LOAD_GENERATOR)
    .reduce((sum, [, f]) => sum + f.cpu_s, 0);
  return {
    ...Object.fromEntries(Object.entries(footprint).map(([name, f]) => [name, perOrder(f.cpu_s)])),
    pipeline: perOrder(pipeline),
  };
}

/** The targets of the issue, each checked against `result`. */
export function checkTargets(
  result: Pick<
    BenchResult,
    "broker_ceiling" | "end_to_end" | "backlog" | "footprint" | "cart_round"
  >,
): TargetCheck[] {
  const at = (c: number) => result.end_to_end.find((r) => r.concurrency === c);
  const atLeast = (name: string, goal: number, measured: number | undefined, unit: string) =>
    check(name, `≥ ${num(goal)} ${unit}`, measured, unit, (v) => v >= goal);
  const atMost = (name: string, goal: number, measured: number | undefined, unit: string) =>
    check(name, `≤ ${num(goal)} ${unit}`, measured, unit, (v) => v <= goal);
  const below = (name: string, goal: number, measured: number | undefined, unit: string) =>
    check(name, `< ${num(goal)} ${unit}`, measured, unit, (v) => v < goal);
  const c64 = at(64)?.completed_per_s;
  const cpu64 = at(64)?.cpu_per_order_ms;
  const servicesShare = cpu64?.broker ? round((100 * cpu64.services) / cpu64.broker, 1) : undefined;
  const cartCpu = result.cart_round?.cpu_per_order_ms;
  const pipelineOf = (cpu: Record<string, number>) => cpu.services + cpu.broker;
  const cartShare = cartCpu && cpu64 && result.cart_round?.concurrency === 64
    ? round((100 * pipelineOf(cartCpu)) / pipelineOf(cpu64), 1)
    : undefined;
  const ceiling = result.broker_ceiling?.messages_per_s;
  const share = c64 !== undefined && ceiling ? round((100 * c64) / (ceiling / 3), 1) : undefined;
  return [
    atLeast("Completed orders/s at concurrency 64", 2500, c64, "orders/s"),
    atLeast("Completed orders/s at concurrency 64, share of broker ceiling ÷ 3", 40, share, "%"),
    atMost(
      "Services' CPU per order at concurrency 64, share of the broker's",
      100,
      servicesShare,
      "%",
    ),
    below(
      `Pipeline CPU per cart of ${result.cart_round?.lines_per_order ?? 3} lines at ` +
        "concurrency 64, share of a one-line order's",
      150,
      cartShare,
      "%",
    ),
    atMost("POST /order p99 at concurrency 32", 15, at(32)?.post.p99_ms, "ms"),
    atMost("Acceptance to final p50 at concurrency 1", 15, at(1)?.accept_to_final.p50_ms, "ms"),
    atLeast("Backlog drain", 4000, result.backlog?.orders_per_s, "orders/s"),
    ...SERVICE_NAMES.map((service) =>
      atMost(`Peak RSS of ${service}`, 80, result.footprint[service]?.peak_rss_mb, "MB")
    ),
  ];
}

function check(
  name: string,
  goal: string,
  measured: number | undefined,
  unit: string,
  meets: (value: number) => boolean,
): TargetCheck {
  const known = measured !== undefined && Number.isFinite(measured);
  return {
    name,
    goal,
    measured: known ? measured : null,
    unit,
    met: known ? meets(measured) : null,
  };
}

/** The run as a Markdown report. */
export function toMarkdown(result: BenchResult): string {
  const m = result.machine;
  const lines: string[] = [
    `# Benchmark ${result.date}${result.quick ? " (quick)" : ""}`,
    "",
    `Machine: ${m.cores} cores (${m.cpu}), ${m.memory_gb} GB, ${m.os}; Deno ${m.deno}, V8 ${m.v8}. ` +
    `Commit ${m.commit}. Load average ${m.load_at_start.toFixed(2)} at start, ` +
    `${m.load_at_end.toFixed(2)} at end; the run took ${num(result.seconds)} s.`,
    "",
  ];
  if (result.note) lines.push(`> ${result.note}`, "");
  // Only the load before the run speaks of other work: at the end it is the run's own.
  if (m.load_at_start > m.cores / 2) {
    lines.push(
      `> The machine was busy with other work (load average above ${m.cores / 2}): ` +
        "the figures are likely lower and noisier than on an idle machine.",
      "",
    );
  }
  lines.push(
    `Options: ${num(result.options.orders)} orders per concurrency level ` +
      `(${result.options.concurrency.join(", ")}), backlog ${num(result.options.backlog)}, ` +
      `broker ceiling ${num(result.options.ceilingMessages)} messages.`,
    "",
    "## Targets",
    "",
    "Targets are for reference on a 2-core machine; `deno task test` checks correctness only.",
    "",
    table(
      ["Target", "Goal", "Measured", "Met"],
      result.targets.map((t) => [
        t.name,
        t.goal,
        t.measured === null
          ? "not measured"
          : `${num(t.measured, t.unit === "orders/s" ? 0 : 1)} ${t.unit}`,
        t.met === null ? "–" : t.met ? "yes" : "**no**",
      ]),
    ),
    "",
    "## Broker ceiling",
    "",
  );
  const c = result.broker_ceiling;
  lines.push(
    c
      ? `${
        num(c.messages)
      } persistent messages, published with confirms (window ${c.publish_window}) ` +
        `and consumed with acks (prefetch ${c.prefetch}) on the same private broker: ` +
        `**${num(c.messages_per_s)} messages/s** end to end, publishing alone ` +
        `${num(c.publish_per_s)} confirms/s. An order costs 2 publishes and 3 deliveries, so ` +
        `the ceiling ÷ 3 (${num(c.messages_per_s / 3)} orders/s) is a rough bound for the pipeline.`
      : "Not measured.",
    "",
    "## End to end",
    "",
    "Accepted: first `POST` to last `201`. Completed: first `POST` to the last final status. " +
      "Acceptance to final: the order service's `created_at` to `updated_at` (1 ms resolution). " +
      "The last row, when there is one, is a round of carts (`lines`, each of that many " +
      "different items listed in mixed orders), run after the footprint was taken. CPU per " +
      "order counts each round alone, from `/proc`: the three services together, and the " +
      "broker.",
    "",
    table(
      [
        "Concurrency",
        "Orders",
        "Accepted/s",
        "POST p50",
        "POST p99",
        "Completed/s",
        "Accept→final p50",
        "Accept→final p99",
        "CPU/order: services / broker",
        "Errors + unfinished",
      ],
      [...result.end_to_end, ...(result.cart_round ? [result.cart_round] : [])].map((r) => [
        r.lines_per_order > 1
          ? `${r.concurrency}, carts of ${r.lines_per_order} lines`
          : String(r.concurrency),
        num(r.accepted),
        num(r.accepted_per_s),
        ms(r.post.p50_ms),
        ms(r.post.p99_ms),
        num(r.completed_per_s),
        ms(r.accept_to_final.p50_ms),
        ms(r.accept_to_final.p99_ms),
        r.cpu_per_order_ms
          ? `${num(r.cpu_per_order_ms.services, 3)} / ${num(r.cpu_per_order_ms.broker, 3)} ms`
          : "–",
        String(r.errors + r.unfinished),
      ]),
    ),
    "",
    "## Backlog drain",
    "",
  );
  const b = result.backlog;
  lines.push(
    b
      ? `Inventory stopped, ${num(b.accepted)} orders placed and queued, inventory started ` +
        `(up in ${num(b.startup_ms)} ms): **${num(b.orders_per_s)} orders/s** until all were ` +
        `final (${b.seconds_to_drain} s); ${num(b.orders_per_s_with_startup)} orders/s counting ` +
        "the start-up."
      : "Not measured.",
    "",
    "## Footprint",
    "",
    "Peak resident memory from start-up through the load phases (the larger of sampled " +
      "`VmRSS` and the kernel's `VmHWM`; inventory's over both its lives). The ledger check " +
      "at the end, which lists every order, comes after the last sample. CPU time counts the " +
      "end-to-end and backlog phases, and so do *write calls* (write-class system calls: " +
      "socket sends and file writes, counted exactly however busy the machine is); *waited* " +
      "is time ready to run but without a CPU, which " +
      "is large when the machine is oversubscribed. `bench` is the load generator itself.",
    "",
    table(
      [
        "Process",
        "Peak RSS",
        "RSS at end",
        "CPU time",
        "CPU per order",
        "Write calls per order",
        "Waited for a CPU",
      ],
      Object.entries(result.footprint).map(([name, f]) => [
        name,
        `${num(f.peak_rss_mb, 1)} MB`,
        `${num(f.last_rss_mb, 1)} MB`,
        `${num(f.cpu_s, 1)} s`,
        `${num(result.cpu_per_order_ms[name], 3)} ms`,
        f.writes === undefined ? "–" : num(f.writes / result.orders_measured, 2),
        `${num(f.cpu_wait_s, 1)} s`,
      ]),
    ),
    "",
    `The pipeline (services and broker) spent ${num(result.cpu_per_order_ms.pipeline, 2)} ms ` +
      `of CPU per order: ${result.machine.cores} cores given to it alone could complete at most ` +
      `about ${num((result.machine.cores * 1000) / result.cpu_per_order_ms.pipeline)} orders/s ` +
      "at this cost.",
    "",
    "## Correctness",
    "",
  );
  const k = result.correctness;
  lines.push(
    table(["Check", "Value"], [
      ["Orders accepted", num(k.accepted)],
      ["Final (reserved / failed)", `${num(k.final)} (${num(k.reserved)} / ${num(k.failed)})`],
      ["Lost (accepted, never final)", String(k.lost)],
      ["Stock taken / reserved quantity", `${num(k.stock_taken)} / ${num(k.reserved_qty)}`],
      ["Double-reserved (stock taken beyond reservations)", String(k.double_reserved)],
      [
        "Notifications missing / repeated / with another outcome",
        `${k.notifications_missing} / ${k.notifications_duplicate} / ${k.notifications_wrong_outcome}`,
      ],
      ["Dead-lettered messages", String(k.dead_lettered)],
    ]),
    "",
    k.ok ? "**All checks passed.**" : `**FAILED:** ${k.problems.join("; ")}.`,
    "",
  );
  return lines.join("\n");
}

function ms(value: number): string {
  return Number.isFinite(value) ? `${num(value, 1)} ms` : "n/a";
}

function table(head: string[], rows: string[][]): string {
  return [
    `| ${head.join(" | ")} |`,
    `| ${head.map((_, i) => i === 0 ? "---" : "---:").join(" | ")} |`,
    ...rows.map((r) => `| ${r.join(" | ")} |`),
  ].join("\n");
}

/** Writes `<stem>.json` and `<stem>.md` into `dir`; returns their paths. */
export async function writeResults(
  result: BenchResult,
  dir: string,
  stem: string,
): Promise<{ json: string; markdown: string }> {
  await Deno.mkdir(dir, { recursive: true });
  const json = join(dir, `${stem}.json`);
  const markdown = join(dir, `${stem}.md`);
  await Deno.writeTextFile(json, JSON.stringify(result, null, 2) + "\n");
  await Deno.writeTextFile(markdown, toMarkdown(result));
  return { json, markdown };
}
