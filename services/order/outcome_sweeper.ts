/**
 * Every order ends: a result the broker confirmed can still miss the order service (its queue
 * deleted or lost with a node while the notification queues took the result). The sweeper asks
 * inventory again about each order that waited longer than `OUTCOME_TIMEOUT_MS`; inventory
 * answers a repeated `OrderPlaced` with the decision it recorded, and takes no stock twice.
 * @module
 */
import { errorText, type Logger } from "@campus/shared/log";
import type { Reask } from "./order.ts";
import type { OrderStore } from "./order_store.ts";
import { SweepLoop } from "./sweep_loop.ts";

/** Orders asked about in one sweep, at most: one transaction of bounded size. */
export const REASK_BATCH = 100;

/** Later asks come at most this many timeouts apart. */
const MAX_SPACING = 16;

/**
 * How long after its `asks`-th ask an order is asked again: twice the time it had waited, so
 * `timeoutMs` after placing, then 3, 7 and 15 timeouts after it, and every 16 timeouts from
 * then on. A long outage of inventory makes a few repeats per order, not one per sweep.
 */
export function nextAskAfter(timeoutMs: number, asks: number): number {
  return timeoutMs * Math.min(2 ** asks, MAX_SPACING);
}

/** Time between sweeps: a quarter of the timeout, between 100 ms and 5 s. */
export function sweepInterval(timeoutMs: number): number {
  return Math.min(Math.max(timeoutMs / 4, 100), 5000);
}

/** What an {@linkcode OutcomeSweeper} works with. */
export interface OutcomeSweeperOptions {
  /** The orders; several replicas may share them. */
  orders: Pick<OrderStore, "reaskOverdue">;
  /** `OUTCOME_TIMEOUT_MS`. */
  timeoutMs: number;
  /** Where a failed sweep is reported. */
  log: Logger;
  /** Hears of the orders asked about again, once that is committed. */
  onReasked?(reasks: readonly Reask[]): void;
  /** Orders per sweep; {@linkcode REASK_BATCH} by default. */
  batchSize?: number;
  /** The clock, in ms since the epoch (tests move it). */
  now?: () => number;
}

/**
 * The background loop that asks again about late orders. A sweep that fails (the database
 * does not answer) is logged and tried again with backoff; nothing it does can end the process.
 * A full batch is followed by the next sweep at once, so a large backlog is asked about in
 * bounded transactions without waiting an interval each.
 */
export class OutcomeSweeper {
  #loop: SweepLoop;

  /** A sweeper over `options.orders`; {@linkcode OutcomeSweeper.start} starts it. */
  constructor(private readonly options: OutcomeSweeperOptions) {
    this.#loop = new SweepLoop({
      sweep: async () => (await this.sweep()).length,
      intervalMs: sweepInterval(options.timeoutMs),
      batchSize: options.batchSize ?? REASK_BATCH,
      log: options.log,
      failed: "cannot ask again about late orders, retrying",
      recovered: "late orders are asked about again",
    });
  }

  /** Starts the loop; its first sweep comes at once (orders left from before a restart). */
  start(): void {
    this.#loop.start();
  }

  /** Stops the loop; resolves once a sweep under way has ended. */
  stop(): Promise<void> {
    return this.#loop.stop();
  }

  /** One sweep: asks again about up to a batch of late orders; resolves with them. */
  async sweep(): Promise<Reask[]> {
    const { orders, timeoutMs, batchSize = REASK_BATCH, now = Date.now } = this.options;
    const reasks = await orders.reaskOverdue({
      now: now(),
      timeoutMs,
      nextAskAfter: (asks) => nextAskAfter(timeoutMs, asks),
      limit: batchSize,
    });
    if (reasks.length > 0) this.#tell(reasks);
    return reasks;
  }

  /** Counts and logs the orders asked about; a listener that throws stops neither. */
  #tell(reasks: readonly Reask[]): void {
    try {
      this.options.onReasked?.(reasks);
    } catch (err) {
      this.options.log.error("re-ask listener failed", { error: errorText(err) });
    }
    for (const { order, asks } of reasks) {
      this.options.log.warn("no outcome yet, asking inventory again", {
        order_id: order.order_id,
        asks,
        placed_at: order.created_at,
      });
    }
  }
}
