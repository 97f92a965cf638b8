/**
 * `deno task bench --store postgres --replicas 1,2,3`: the same load through a stack on SQLite,
 * then through stacks on PostgreSQL with 1, 2, 3 inventory replicas, each measured for
 * completed orders/s and CPU per order of every process, PostgreSQL's own backends included.
 * @module
 */
import postgres from "postgres";
import { SERVICE_NAMES, type ServiceName } from "@campus/shared/topology";
import { TEST_POSTGRES_URL } from "@campus/testing/store_contract";
import { Stack, stockLevels } from "../tests/support.ts";
import { type Footprint, FootprintSampler } from "./footprint.ts";
import { loadRound, type RoundFigures, roundFigures } from "./round.ts";
import type { BenchOptions } from "./options.ts";
import { num, Progress } from "./progress.ts";
import { LOAD_GENERATOR, type MachineInfo } from "./report.ts";
import { round } from "./stats.ts";

/** The footprint name of PostgreSQL's backends serving the stack's services, summed. */
export const POSTGRES = "postgres";

/** One measured round. */
export interface ReplicaRound extends RoundFigures {
  store: "sqlite" | "postgres";
  inventory_replicas: number;
}

/** What a replica comparison produced; its JSON file holds exactly this. */
export interface ReplicaResult {
  date: string;
  quick: boolean;
  note: string;
  machine: MachineInfo;
  seconds: number;
  rounds: ReplicaRound[];
}

/**
 * Runs the SQLite round, then a PostgreSQL round per count of `options.replicas`; `running`
 * hears of each stack while it runs (so an interrupt can stop it), and of undefined after.
 */
export async function runReplicaRounds(
  options: BenchOptions,
  items: readonly string[],
  stock: number,
  running: (stack: Stack | undefined) => void = () => {},
): Promise<ReplicaRound[]> {
  const concurrency = Math.max(...options.concurrency);
  const plan = [
    { store: "sqlite" as const, inventory: 1 },
    ...options.replicas.map((inventory) => ({ store: "postgres" as const, inventory })),
  ];
  const rounds: ReplicaRound[] = [];
  for (const [index, { store, inventory }] of plan.entries()) {
    const label = `${store} ×${inventory}`;
    const progress = new Progress(label);
    progress.update("starting a private broker and the services");
    const stack = await Stack.start({
      store,
      replicas: { inventory },
      menu: Object.fromEntries(items.map((item) => [item, stock])),
    });
    running(stack);
    try {
      rounds.push(
        await measure(stack, { store, inventory, concurrency, index, items, options, progress }),
      );
    } finally {
      running(undefined);
      await stack.dispose();
    }
    const r = rounds[rounds.length - 1];
    progress.done(
      `${num(r.completed_per_s)} completed orders/s, ` +
        `${num(r.cpu_per_order_ms.pipeline, 2)} ms CPU per order` +
        (r.ok ? "" : `; LEDGER FAILED: ${r.problems.join("; ")}`),
    );
  }
  return rounds;
}

interface RoundSettings {
  store: "sqlite" | "postgres";
  inventory: number;
  concurrency: number;
  index: number;
  items: readonly string[];
  options: BenchOptions;
  progress: Progress;
}

async function measure(stack: Stack, settings: RoundSettings): Promise<ReplicaRound> {
  const { store, inventory, concurrency, index, items, options, progress } = settings;
  const stockBefore = await stockLevels(stack);
  const brokerPid = await stack.backend.pid("broker");
  const admin = store === "postgres"
    ? postgres(TEST_POSTGRES_URL, { max: 1, onnotice: () => {} })
    : undefined;
  const processes = async () => {
    const pids: Record<string, number | undefined> = {
      broker: brokerPid,
      [LOAD_GENERATOR]: Deno.pid,
    };
    for (const service of SERVICE_NAMES) {
      for (let replica = 0; replica < stack.replicasOf(service); replica++) {
        pids[processName(stack, service, replica)] = await stack.backend.pid(service, replica);
      }
    }
    if (admin) {
      // Each service names its connections `<service>-<pid>`: their backends are its share.
      const names = Object.entries(pids)
        .filter(([name]) => SERVICE_NAMES.some((s) => name.startsWith(s)))
        .map(([name, pid]) => `${name.replace(/-\d+$/, "")}-${pid}`);
      const rows = await admin`SELECT pid FROM pg_stat_activity
        WHERE application_name IN ${admin(names)}`;
      for (const { pid } of rows) pids[`${POSTGRES}:${pid}`] = pid;
    }
    return pids;
  };
  const sampler = new FootprintSampler(processes);
  try {
    await sampler.start();
    const run = await loadRound(stack, progress, {
      count: options.orders,
      concurrency,
      studentId: `replicas-${index}`,
      items,
    });
    const footprint = sumBackends(await sampler.stop());
    const { figures } = await roundFigures(stack, progress, run, footprint, {
      stockBefore,
      orderIds: run.placement.accepted.map((o) => o.order_id),
    });
    return { ...figures, store, inventory_replicas: inventory };
  } finally {
    await sampler.stop().catch(() => {});
    await admin?.end();
  }
}

/** `inventory` for a lone process, `inventory-1`, `inventory-2`… for replicas. */
function processName(stack: Stack, service: ServiceName, replica: number): string {
  return stack.replicasOf(service) > 1 ? `${service}-${replica + 1}` : service;
}

/** PostgreSQL's backends as one process: their CPU summed, their memory the largest one's. */
function sumBackends(footprint: Record<string, Footprint>): Record<string, Footprint> {
  const backends = Object.entries(footprint).filter(([name]) => name.startsWith(`${POSTGRES}:`));
  const others = Object.fromEntries(
    Object.entries(footprint).filter(([name]) => !name.startsWith(`${POSTGRES}:`)),
  );
  if (backends.length === 0) return others;
  const all = backends.map(([, f]) => f);
  const sum = (key: "cpu_s" | "cpu_wait_s") => round(all.reduce((t, f) => t + f[key], 0), 2);
  return {
    ...others,
    [POSTGRES]: {
      peak_rss_mb: Math.max(...all.map((f) => f.peak_rss_mb)),
      last_rss_mb: Math.max(...all.map((f) => f.last_rss_mb)),
      cpu_s: sum("cpu_s"),
      cpu_wait_s: sum("cpu_wait_s"),
      samples: Math.max(...all.map((f) => f.samples)),
    },
  };
}

/** The comparison as the `## Replicas on PostgreSQL` section of a report. */
export function replicasMarkdown(result: ReplicaResult): string {
  const m = result.machine;
  const sqlite = result.rounds.find((r) => r.store === "sqlite");
  const first = result.rounds[0];
  const lines = [
    REPLICAS_HEADING,
    "",
    `${result.date}${
      result.quick ? " (quick)" : ""
    }: ${m.cores} cores (${m.cpu}), Deno ${m.deno}, ` +
    `commit ${m.commit}; load average ${m.load_at_start.toFixed(2)} at start. ` +
    `Each round: a fresh stack on one broker node (classic queues), ${
      num(first?.orders ?? 0)
    } orders at concurrency ${first?.concurrency}, ` +
    `one order and one notification process, the given number of inventory replicas; ` +
    `\`deno task bench --store postgres --replicas ${
      result.rounds.filter((r) => r.store === "postgres").map((r) => r.inventory_replicas).join(",")
    }\`.`,
    "",
  ];
  if (result.note) lines.push(`> ${result.note}`, "");
  lines.push(
    "| Store | Inventory replicas | Completed orders/s | vs SQLite | POST p99 | CPU/order: order | inventory (each) | notification | broker | PostgreSQL | pipeline | Ledger |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
  );
  const ms = (v: number | undefined) => v === undefined ? "–" : `${num(v, 3)} ms`;
  for (const r of result.rounds) {
    const cpu = r.cpu_per_order_ms;
    const inventories = Object.keys(cpu).filter((k) => /^inventory(-\d+)?$/.test(k)).sort();
    const vs = sqlite && sqlite.completed_per_s > 0
      ? `${num((100 * r.completed_per_s) / sqlite.completed_per_s)} %`
      : "–";
    lines.push(
      `| ${r.store} | ${r.inventory_replicas} | ${num(r.completed_per_s)} | ${vs} | ` +
        `${num(r.post_p99_ms, 1)} ms | ${ms(cpu.order)} | ${
          inventories.map((k) => num(cpu[k], 3)).join(" / ")
        } ms | ${ms(cpu.notification)} | ${ms(cpu.broker)} | ${ms(cpu[POSTGRES])} | ` +
        `${ms(cpu.pipeline)} | ${r.ok ? "ok" : `**${r.problems.join("; ")}**`} |`,
    );
  }
  lines.push(
    "",
    "CPU per order counts each process over the load of its round; _PostgreSQL_ is the server's " +
      "backends serving the services' connections, summed. On 2 cores the replicas share the " +
      "same cores, so they add no speed: the rows show what the shared store costs, and that " +
      "nothing breaks as the count grows.",
    "",
  );
  return lines.join("\n");
}

/** The heading that starts the replica section of `bench/BASELINE.md`. */
export const REPLICAS_HEADING = "## Replicas on PostgreSQL";
