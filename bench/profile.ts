/**
 * Where a service's CPU goes: the V8 CPU profiles that `deno task bench --profile DIR` has each
 * service write, summed by function group over the measured window only.
 * @module
 */
import { join } from "node:path";
import { round } from "./stats.ts";

/** The part of a `.cpuprofile` file this reads. */
interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string }; children?: number[] }[];
  /** Microseconds on the kernel's monotonic clock, as `/proc/uptime` counts. */
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** A stretch of time on the clock of {@linkcode uptimeSeconds}. */
export interface ProfileWindow {
  from: number;
  to: number;
}

/** CPU time by function group of one process, in ms, over a window. */
export type GroupTimes = Record<string, number>;

/**
 * Seconds since boot. V8 stamps its profiles with the same clock, so a window taken here picks
 * the samples of the load alone, without start-up or the ledger check.
 */
export async function uptimeSeconds(): Promise<number> {
  return Number((await Deno.readTextFile("/proc/uptime")).split(" ")[0]);
}

/**
 * The group a sample counts for, from its stack (leaf first): the nearest frame of a named
 * library or of the project's own code decides, so time in a built-in called from a store
 * counts for the store. Samples with no such frame are the runtime's own (HTTP server, timers).
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { groupOf } from "./profile.ts";
 *
 * const frame = (url: string, functionName = "f") => ({ url, functionName });
 * assert.equal(groupOf([frame(""), frame("file:///p/shared/storage/sqlite.ts")]), "SQLite");
 * assert.equal(groupOf([frame("", "(garbage collector)")]), "GC (main thread)");
 * ```
 */
export function groupOf(stack: readonly { url: string; functionName: string }[]): string {
  const leaf = stack[0]?.functionName;
  if (leaf === "(garbage collector)") return "GC (main thread)";
  if (leaf === "(program)") return "V8 and native, unattributed";
  for (const { url } of stack) {
    if (!url) continue;
    const npm = /\/npm\/[^/]+\/(@[^/]+\/[^/]+|[^/]+)\//.exec(url)?.[1];
    if (npm) return LIBRARIES[npm] ?? `npm:${npm}`;
    const own = /\/(services|shared)\/(.+)$/.exec(url)?.[2];
    if (own) return PROJECT.find(([pattern]) => pattern.test(own))?.[1] ?? "handlers and domain";
  }
  return "Deno runtime (HTTP server, sockets, timers)";
}

/** AMQP frames built and parsed, and the socket writes that send them. */
const AMQP = "amqplib (frames, socket writes)";

const LIBRARIES: Record<string, string> = {
  amqplib: AMQP,
  "buffer-more-ints": AMQP,
  zod: "zod (schemas)",
  "prom-client": "metrics",
  postgres: "PostgreSQL driver",
  "@opentelemetry/api": "tracing",
};

/** Project files by group, the first match wins. */
const PROJECT: [RegExp, string][] = [
  [/storage\/|_store_sqlite\.ts$|outbox_store_sqlite/, "SQLite"],
  [/_store_postgres\.ts$|outbox_store_postgres/, "PostgreSQL stores"],
  [/messaging\/contract\.ts$|event_schemas|_message_copy/, "zod (schemas)"],
  // The corked round of amqplib's multiplexer: its writes are amqplib's, wherever they start.
  [/messaging\/_coalesced_writes\.ts$/, AMQP],
  [/messaging\//, "messaging (consume, publish, outbox relay)"],
  [/http\//, "HTTP routing and bodies"],
  [/runtime\/log\.ts$/, "logging"],
  [/runtime\/(metrics|tracing)\.ts$|_metrics\.ts$/, "metrics"],
  [/pages\//, "pages"],
];

/** Sums one profile's samples inside `window` by group, in ms; idle time is left out. */
export function groupTimes(profile: CpuProfile, window: ProfileWindow): GroupTimes {
  const parent = new Map<number, number>();
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  for (const node of profile.nodes) {
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  const groups = new Map<number, string>();
  const group = (id: number) => {
    let known = groups.get(id);
    if (known === undefined) {
      const stack = [];
      for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
        stack.push(byId.get(at)!.callFrame);
      }
      known = groupOf(stack);
      groups.set(id, known);
    }
    return known;
  };
  const times: GroupTimes = {};
  let at = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i];
    const seconds = at / 1e6;
    if (seconds < window.from || seconds > window.to) continue;
    const id = profile.samples[i];
    if (byId.get(id)!.callFrame.functionName === "(idle)") continue;
    // A sample stands for the time until the next one.
    const weight = (profile.timeDeltas[i + 1] ?? 0) / 1000;
    const name = group(id);
    times[name] = (times[name] ?? 0) + weight;
  }
  return times;
}

/** Reads every profile below `dir` (one folder per process) and sums each process's groups. */
export async function readProfiles(
  dir: string,
  window: ProfileWindow,
): Promise<Record<string, GroupTimes>> {
  const result: Record<string, GroupTimes> = {};
  for await (const folder of Deno.readDir(dir)) {
    if (!folder.isDirectory) continue;
    const times: GroupTimes = {};
    for await (const file of Deno.readDir(join(dir, folder.name))) {
      if (!file.name.endsWith(".cpuprofile")) continue;
      const profile = JSON.parse(await Deno.readTextFile(join(dir, folder.name, file.name)));
      for (const [name, ms] of Object.entries(groupTimes(profile, window))) {
        times[name] = (times[name] ?? 0) + ms;
      }
    }
    result[folder.name] = times;
  }
  return result;
}

/**
 * A Markdown table: each group's share of each process's sampled CPU, largest first, and the
 * sampled CPU per order. The profiler itself adds to the time, so shares are what compares.
 */
export function profileMarkdown(profiles: Record<string, GroupTimes>, orders: number): string {
  const processes = Object.keys(profiles).sort();
  const totals = Object.fromEntries(
    processes.map((p) => [p, Object.values(profiles[p]).reduce((a, b) => a + b, 0)]),
  );
  const names = [...new Set(processes.flatMap((p) => Object.keys(profiles[p])))];
  const share = (p: string, name: string) =>
    totals[p] ? (100 * (profiles[p][name] ?? 0)) / totals[p] : 0;
  const overall = (name: string) => processes.reduce((sum, p) => sum + share(p, name), 0);
  names.sort((a, b) => overall(b) - overall(a));
  const rows = names.map((name) => [
    name,
    ...processes.map((p) => `${round(share(p, name), 1)} %`),
  ]);
  rows.push([
    "**sampled CPU per order** (profiler included)",
    ...processes.map((p) => `${round(totals[p] / orders, 3)} ms`),
  ]);
  return [
    `| Group | ${processes.join(" | ")} |`,
    `| --- | ${processes.map(() => "---:").join(" | ")} |`,
    ...rows.map((r) => `| ${r.join(" | ")} |`),
  ].join("\n");
}
