/**
 * One measured round of a comparison (`--store postgres`, `--observe`): the load with its
 * progress shown, and the figures every comparison reports of it, ledger check included.
 */
import { checkLedger, type Stack } from "../tests/support.ts";
import type { Footprint } from "./footprint.ts";
import { type LoadResult, type LoadRound, ordersOf, runLoad, summarizeRound } from "./load.ts";
import { num, type Progress } from "./progress.ts";
import { cpuPerOrderMs } from "./report.ts";

/** What a comparison loads in a round. */
export interface RoundLoad {
  count: number;
  concurrency: number;
  /** Student id of every order of the round, so the round can be listed on its own. */
  studentId: string;
  items: readonly string[];
  /** Lines of each order; more than 1 places carts. */
  linesPerOrder?: number;
}

/** Places the round's orders and waits until all are final, showing progress. */
export function loadRound(stack: Stack, progress: Progress, load: RoundLoad): Promise<LoadRound> {
  const { count, studentId } = load;
  return runLoad({
    ...load,
    orderUrl: stack.url("order"),
    timeoutMs: 60_000 + count * 20,
    onProgress: (n) => progress.update(`${studentId}: posted ${num(n)}/${num(count)}`),
    onWait: (waited) =>
      progress.update(`${studentId}: waiting for final statuses (${num(waited / 1000, 1)} s)`),
  });
}

/** The figures every comparison reports of a round. */
export interface RoundFigures {
  orders: number;
  concurrency: number;
  accepted: number;
  errors: number;
  /** First `POST` to the last final status. */
  completed_per_s: number;
  post_p99_ms: number;
  /** CPU ms per accepted order by process, `pipeline` summed. */
  cpu_per_order_ms: Record<string, number>;
  footprint: Record<string, Footprint>;
  /** No problem found: the ledger adds up, every POST answered 201, every order final. */
  ok: boolean;
  problems: string[];
}

/** Settings of {@linkcode roundFigures}. */
export interface RoundCheck {
  /** Stock levels before the round. */
  stockBefore: Record<string, number>;
  /** Every order the ledger covers (a warm-up's too). */
  orderIds: string[];
  /** Problems the caller found besides the ledger's and the load's own. */
  problems?: string[];
}

/**
 * The figures of `run` with the CPU of `footprint`, after the ledger check of `orderIds`;
 * `summary` is the round as {@linkcode summarizeRound} reads it, for figures of one comparison.
 */
export async function roundFigures(
  stack: Stack,
  progress: Progress,
  run: LoadRound,
  footprint: Record<string, Footprint>,
  { stockBefore, orderIds, problems: more = [] }: RoundCheck,
): Promise<{ figures: RoundFigures; summary: LoadResult }> {
  const summary = summarizeRound(run, await ordersOf(stack.url("order"), run.studentId));
  progress.update("comparing the ledgers");
  const ledger = await checkLedger(stack, { stockBefore, orderIds });
  const problems = [
    ...ledger.problems,
    ...(summary.errors ? [`${summary.errors} POSTs failed: ${summary.error_samples[0]}`] : []),
    ...(summary.unfinished ? [`${summary.unfinished} orders not final in time`] : []),
    ...more,
  ];
  return {
    summary,
    figures: {
      orders: run.orders,
      concurrency: run.concurrency,
      accepted: summary.accepted,
      errors: summary.errors,
      completed_per_s: summary.completed_per_s,
      post_p99_ms: summary.post.p99_ms,
      cpu_per_order_ms: cpuPerOrderMs(footprint, Math.max(1, summary.accepted)),
      footprint,
      ok: ledger.ok && problems.length === 0,
      problems,
    },
  };
}
