/** `deno task bench`: starts a private stack, measures throughput, latency, drain and memory. */
import { SERVICE_NAMES } from "@campus/shared/topology";
import { checkLedger, Stack, stockLevels } from "../tests/support.ts";
import { type CeilingResult, measureBrokerCeiling } from "./broker_ceiling.ts";
import { type BacklogResult, type BacklogRun, runBacklog, summarizeBacklog } from "./backlog.ts";
import { FootprintSampler, readProcess } from "./footprint.ts";
import {
  type AcceptedOrder,
  type LoadResult,
  type LoadRound,
  ordersOf,
  runLoad,
  summarizeRound,
} from "./load.ts";
import { type BenchOptions, parseOptions, USAGE } from "./options.ts";
import { num, Progress, say } from "./progress.ts";
import {
  type BenchResult,
  checkTargets,
  cpuPerOrderMs,
  LOAD_GENERATOR,
  type MachineInfo,
  machineInfo,
  toMarkdown,
  writeResults,
} from "./report.ts";
import { perSecond, round, summarize } from "./stats.ts";
import {
  type ReplicaRound,
  REPLICAS_HEADING,
  replicasMarkdown,
  runReplicaRounds,
} from "./replicas.ts";
import {
  OBSERVE_HEADING,
  observeMarkdown,
  type ObserveRound,
  runObserveRounds,
} from "./observe.ts";
import { keepSections, withSection } from "./sections.ts";
import { profileMarkdown, readProfiles, uptimeSeconds } from "./profile.ts";
import { join } from "node:path";

/** Menu items ordered round-robin, each stocked so that every order can be reserved. */
const ITEMS = ["Pizza", "Burger", "Sushi", "Salad", "Taco", "Sandwich", "Pasta", "Coffee"];
const STOCK = 10_000_000;
/** Lines of each order of the cart round: three different items, as a meal with a drink. */
const CART_LINES = 3;

const BASELINE = new URL("./BASELINE.md", import.meta.url).pathname;

async function main(): Promise<number> {
  let options: BenchOptions | undefined;
  try {
    options = parseOptions(Deno.args);
  } catch (err) {
    say(`${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (!options) {
    say(USAGE);
    return 0;
  }
  const machine = await machineInfo();
  const date = new Date();
  const started = performance.now();
  if (options.store === "postgres") return await compare(options, machine, date, REPLICAS);
  if (options.observe) return await compare(options, machine, date, OBSERVABILITY);
  const load = machine.load_at_start.toFixed(2);
  say(
    `bench: ${machine.cores} cores, Deno ${machine.deno}, load ${load}; ` +
      `${num(options.orders)} orders at concurrency ${options.concurrency.join(", ")}, ` +
      `backlog ${num(options.backlog)}`,
  );

  const startup = new Progress("stack");
  startup.update("starting a private broker and the three services");
  const starting = Stack.start({
    menu: Object.fromEntries(ITEMS.map((item) => [item, STOCK])),
    cpuProfileDir: options.profile,
  });
  // Cleaning up must work from a signal too, even while the stack is still starting.
  let sampler: FootprintSampler | undefined;
  let cleaning: Promise<void> | undefined;
  const cleanup = () =>
    cleaning ??= (async () => {
      await sampler?.stop().catch(() => {});
      const stack = await starting.catch(() => undefined);
      await stack?.dispose();
    })();
  let aborted = false;
  const interrupted = () => {
    aborted = true;
    say("\ninterrupted: stopping the stack");
    cleanup().finally(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", interrupted);
  Deno.addSignalListener("SIGTERM", interrupted);

  let stack: Stack;
  try {
    stack = await starting;
  } catch (err) {
    if (!aborted) say(`Cannot start the stack: ${(err as Error).message}`);
    await cleanup();
    return aborted ? 130 : 1;
  }
  try {
    if (aborted) return 130;
    const brokerPid = await stack.backend.pid("broker");
    startup.done(`up in ${num((performance.now() - started) / 1000, 1)} s`);
    const orderUrl = stack.url("order");
    const stockBefore = await stockLevels(stack);
    let ceiling: CeilingResult | null = null;
    if (options.ceilingMessages > 0) {
      const progress = new Progress("ceiling");
      ceiling = await measureBrokerCeiling(stack.backend.amqpUrl, options.ceilingMessages, {
        onProgress: (p, c) =>
          progress.update(
            `${num(p)} published, ${num(c)} consumed of ${num(options.ceilingMessages)}`,
          ),
      });
      const { messages, seconds } = ceiling;
      progress.done(
        `${num(ceiling.messages_per_s)} msg/s publish+consume ` +
          `(${num(ceiling.publish_per_s)} confirms/s; ${num(messages)} msgs in ${seconds} s)`,
      );
    }

    // Sampling starts after the ceiling so that CPU time counts order work only; the kernel's
    // VmHWM still reports any earlier memory peak.
    const pipelinePids = async () => ({
      ...Object.fromEntries(
        await Promise.all(SERVICE_NAMES.map(async (s) => [s, await stack.backend.pid(s)])),
      ),
      broker: brokerPid,
    });
    sampler = new FootprintSampler(async () => ({
      ...await pipelinePids(),
      [LOAD_GENERATOR]: Deno.pid,
    }));
    await sampler.start();
    const window = { from: await uptimeSeconds(), to: Infinity };

    // Each round's own CPU per order, by process, read from /proc before and after it.
    const roundCpu = new Map<LoadRound, Record<string, number>>();
    const measured = async (load: () => Promise<LoadRound>) => {
      const before = await cpuTimes(await pipelinePids());
      const run = await load();
      roundCpu.set(run, perOrder(before, await cpuTimes(await pipelinePids()), run));
      return run;
    };
    const rounds: LoadRound[] = [];
    for (const [index, concurrency] of options.concurrency.entries()) {
      const progress = new Progress(`c=${concurrency}`);
      const run = await measured(() =>
        runLoad({
          orderUrl,
          count: options.orders,
          concurrency,
          studentId: `bench-${index + 1}-c${concurrency}`,
          items: ITEMS,
          timeoutMs: 60_000 + options.orders * 10,
          onProgress: (n) => progress.update(`posted ${num(n)}/${num(options.orders)}`),
          onWait: (waited) =>
            progress.update(`waiting for final statuses (${num(waited / 1000, 1)} s)`),
        })
      );
      rounds.push(run);
      progress.done(roundLine(run));
    }

    let backlogRun: BacklogRun | undefined;
    if (options.backlog > 0) {
      const progress = new Progress("backlog");
      backlogRun = await runBacklog({
        orderUrl,
        count: options.backlog,
        concurrency: Math.max(...options.concurrency),
        items: ITEMS,
        studentId: "bench-backlog",
        stopInventory: () => stack.stop("inventory"),
        startInventory: () => stack.start("inventory"),
        queueDepth: (queue) => stack.queueDepth(queue),
        timeoutMs: 60_000 + options.backlog * 10,
        onProgress: (text) => progress.update(text),
      });
      progress.done(
        `${num(backlogRun.queued)} queued while inventory was down; all final ` +
          `${num((Date.now() - backlogRun.upAt) / 1000, 1)} s after it was back`,
      );
    }

    // The footprint covers the single-item load phases only, so that its CPU per order compares
    // with earlier runs; listing every order below is bookkeeping.
    const footprint = await sampler.stop();
    window.to = await uptimeSeconds();
    const orderCount = rounds.reduce((n, r) => n + r.placement.accepted.length, 0) +
      (backlogRun?.placement.accepted.length ?? 0);
    const cpuPerOrder = cpuPerOrderMs(footprint, orderCount);
    const show = (name: string) =>
      `${name} ${num(footprint[name]?.peak_rss_mb, 1)} MB / ${num(cpuPerOrder[name], 2)} ms`;
    say(
      `${"footprint".padEnd(12)} peak RSS / CPU per order: ` +
        [...SERVICE_NAMES, "broker", LOAD_GENERATOR].map(show).join(", "),
    );

    // Carts at the highest concurrency, beside the single-item rounds: each order reserves
    // three items at once, in mixed orders.
    const cartConcurrency = Math.max(...options.concurrency);
    const cartProgress = new Progress(`carts c=${cartConcurrency}`);
    const cartRun = await measured(() =>
      runLoad({
        orderUrl,
        count: options.orders,
        concurrency: cartConcurrency,
        studentId: `bench-carts-c${cartConcurrency}`,
        items: ITEMS,
        linesPerOrder: CART_LINES,
        timeoutMs: 60_000 + options.orders * 10 * CART_LINES,
        onProgress: (n) => cartProgress.update(`posted ${num(n)}/${num(options.orders)} carts`),
        onWait: (waited) =>
          cartProgress.update(`waiting for final statuses (${num(waited / 1000, 1)} s)`),
      })
    );
    cartProgress.done(roundLine(cartRun));

    const placed: AcceptedOrder[] = [];
    const endToEnd: LoadResult[] = [];
    for (const run of rounds) {
      endToEnd.push({
        ...summarizeRound(run, await ordersOf(orderUrl, run.studentId)),
        cpu_per_order_ms: roundCpu.get(run),
      });
      placed.push(...run.placement.accepted);
    }
    let backlog: BacklogResult | null = null;
    if (backlogRun) {
      backlog = summarizeBacklog(backlogRun, await ordersOf(orderUrl, backlogRun.studentId));
      placed.push(...backlogRun.placement.accepted);
    }

    const cartRound = {
      ...summarizeRound(cartRun, await ordersOf(orderUrl, cartRun.studentId)),
      cpu_per_order_ms: roundCpu.get(cartRun),
    };
    placed.push(...cartRun.placement.accepted);

    const checking = new Progress("correctness");
    checking.update("comparing the ledgers of the three services");
    const correctness = await checkLedger(stack, {
      stockBefore,
      orderIds: placed.map((o) => o.order_id),
    });
    const accepted = num(correctness.accepted);
    checking.done(
      correctness.ok
        ? `ok: ${accepted} orders, none lost, none reserved twice, one notification each`
        : `FAILED: ${correctness.problems.join("; ")}`,
    );

    machine.load_at_end = round(Deno.loadavg()[0], 2);
    const partial = {
      broker_ceiling: ceiling,
      end_to_end: endToEnd,
      cart_round: cartRound,
      backlog,
      footprint,
      cpu_per_order_ms: cpuPerOrder,
      orders_measured: orderCount,
    };
    const { out: _out, baseline: _baseline, note, ...shown } = options;
    const result: BenchResult = {
      date: date.toISOString(),
      quick: options.quick,
      note,
      machine,
      options: shown,
      seconds: round((performance.now() - started) / 1000, 1),
      ...partial,
      correctness,
      targets: checkTargets(partial),
    };
    const stem = date.toISOString().slice(0, 19).replaceAll(":", "-") +
      (options.quick ? "-quick" : "");
    const files = await writeResults(result, options.out, stem);
    const written = [files.json, files.markdown];
    const report = toMarkdown(result);
    if (options.baseline) {
      // The comparisons keep their own sections, rewritten only by their own runs.
      const previous = await Deno.readTextFile(BASELINE).catch(() => "");
      await Deno.writeTextFile(BASELINE, keepSections(report, previous, SECTIONS));
      // The baseline is committed, so it must pass `deno fmt --check` like every other file.
      await new Deno.Command(Deno.execPath(), { args: ["fmt", "--quiet", BASELINE] }).output();
      written.push(BASELINE);
    }
    // The console gets the report from its targets on; the header repeats what was printed.
    say("\n" + report.slice(report.indexOf("## Targets")));
    if (options.profile) {
      // The services write their profiles as they exit, which a graceful stop lets them do.
      for (const service of SERVICE_NAMES) await stack.stop(service);
      const table = profileMarkdown(await readProfiles(options.profile, window), orderCount);
      const path = join(options.out, `${stem}-profile.md`);
      await Deno.writeTextFile(path, table + "\n");
      say(`\nWhere each service's CPU went over the single-item rounds:\n\n${table}`);
      written.push(path);
    }
    say(`results: ${written.join("\n         ")}`);
    return correctness.ok ? 0 : 1;
  } catch (err) {
    // After Ctrl-C the stack is torn down under the running phase: its errors mean nothing.
    if (aborted) return 130;
    say(`\nbench failed: ${(err as Error).stack ?? err}`);
    for (const service of SERVICE_NAMES) {
      const log = (await stack.logs(service)).trim().split("\n").slice(-5).join("\n");
      if (log) say(`--- last lines of ${service}:\n${log}`);
    }
    return 1;
  } finally {
    await cleanup();
    Deno.removeSignalListener("SIGINT", interrupted);
    Deno.removeSignalListener("SIGTERM", interrupted);
  }
}

/** CPU time so far of each process, in ms; a process gone counts nothing. */
async function cpuTimes(pids: Record<string, number | undefined>): Promise<Record<string, number>> {
  const entries = await Promise.all(
    Object.entries(pids).map(async ([name, pid]) => {
      const reading = pid === undefined ? undefined : await readProcess(pid);
      return [name, reading?.cpuMs ?? 0] as const;
    }),
  );
  return Object.fromEntries(entries);
}

/** CPU per accepted order of a round, by process, and of the services together. */
function perOrder(
  before: Record<string, number>,
  after: Record<string, number>,
  run: LoadRound,
): Record<string, number> {
  const orders = Math.max(1, run.placement.accepted.length);
  const spent = Object.fromEntries(
    Object.keys(after).map((name) => [name, (after[name] - (before[name] ?? 0)) / orders]),
  );
  const services = SERVICE_NAMES.reduce((sum, name) => sum + (spent[name] ?? 0), 0);
  return Object.fromEntries(
    Object.entries({ ...spent, services }).map(([name, ms]) => [name, round(ms, 3)]),
  );
}

/** What a round gave, in one line of progress. */
function roundLine(run: LoadRound): string {
  const { placement } = run;
  const post = summarize(placement.durations);
  const finalAfter = num((run.finalSeenAt - placement.startedAt) / 1000, 1);
  return `${num(placement.accepted.length)} accepted at ` +
    `${num(perSecond(placement.accepted.length, placement.postingMs))}/s, ` +
    `POST p50 ${post.p50_ms} ms p99 ${post.p99_ms} ms; ` +
    (run.allFinal
      ? `all final ${finalAfter} s after the first POST`
      : "NOT all final before the timeout") +
    (placement.errors ? `; ${placement.errors} errors` : "");
}

/** A comparison of rounds, each on a fresh stack, reported in its own section. */
interface Comparison<R extends { ok: boolean }> {
  /** The first line printed, saying what is compared. */
  intro(options: BenchOptions): string;
  /** Appended to the results' file names. */
  suffix: string;
  /** The section's heading in `bench/BASELINE.md`. */
  heading: string;
  run(options: BenchOptions, running: (stack: Stack | undefined) => void): Promise<R[]>;
  markdown(result: ComparisonResult<R>): string;
}

/** What a comparison produced; its JSON file holds exactly this. */
interface ComparisonResult<R> {
  date: string;
  quick: boolean;
  note: string;
  machine: MachineInfo;
  seconds: number;
  rounds: R[];
}

const REPLICAS: Comparison<ReplicaRound> = {
  intro: (options) =>
    `bench: replicas on PostgreSQL against SQLite; ${num(options.orders)} orders at concurrency ` +
    `${Math.max(...options.concurrency)}; inventory replicas ${options.replicas.join(", ")}`,
  suffix: "-replicas",
  heading: REPLICAS_HEADING,
  run: (options, running) => runReplicaRounds(options, ITEMS, STOCK, running),
  markdown: replicasMarkdown,
};

const OBSERVABILITY: Comparison<ObserveRound> = {
  intro: (options) =>
    `bench: observability cost; ${num(options.orders)} orders at concurrency ` +
    `${Math.max(...options.concurrency)}: plain, scraped every second, traced, plain again`,
  suffix: "-observe",
  heading: OBSERVE_HEADING,
  run: (options, running) => runObserveRounds(options, ITEMS, STOCK, running),
  markdown: observeMarkdown,
};

/** The sections of `bench/BASELINE.md` that the comparisons write and the full run keeps. */
const SECTIONS = [REPLICAS.heading, OBSERVABILITY.heading];

/** `--store postgres` or `--observe`: a comparison, reported on its own. */
async function compare<R extends { ok: boolean }>(
  options: BenchOptions,
  machine: MachineInfo,
  date: Date,
  comparison: Comparison<R>,
): Promise<number> {
  const started = performance.now();
  say(comparison.intro(options));
  let current: Stack | undefined;
  const interrupted = () => {
    say("\ninterrupted: stopping the stack");
    (current?.dispose() ?? Promise.resolve()).finally(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", interrupted);
  Deno.addSignalListener("SIGTERM", interrupted);
  try {
    const rounds = await comparison.run(options, (stack) => current = stack);
    machine.load_at_end = round(Deno.loadavg()[0], 2);
    const result: ComparisonResult<R> = {
      date: date.toISOString(),
      quick: options.quick,
      note: options.note,
      machine,
      seconds: round((performance.now() - started) / 1000, 1),
      rounds,
    };
    const section = comparison.markdown(result);
    const stem = date.toISOString().slice(0, 19).replaceAll(":", "-") + comparison.suffix +
      (options.quick ? "-quick" : "");
    await Deno.mkdir(options.out, { recursive: true });
    const written = [`${options.out}/${stem}.json`, `${options.out}/${stem}.md`];
    await Deno.writeTextFile(written[0], JSON.stringify(result, null, 2) + "\n");
    await Deno.writeTextFile(written[1], section);
    if (options.baseline) {
      const baseline = await Deno.readTextFile(BASELINE).catch(() => "# Benchmark\n");
      await Deno.writeTextFile(BASELINE, withSection(baseline, comparison.heading, section));
      await new Deno.Command(Deno.execPath(), { args: ["fmt", "--quiet", BASELINE] }).output();
      written.push(BASELINE);
    }
    say("\n" + section);
    say(`results: ${written.join("\n         ")}`);
    return rounds.every((r) => r.ok) ? 0 : 1;
  } catch (err) {
    say(`\nbench failed: ${(err as Error).stack ?? err}`);
    return 1;
  } finally {
    Deno.removeSignalListener("SIGINT", interrupted);
    Deno.removeSignalListener("SIGTERM", interrupted);
  }
}

Deno.exit(await main());
