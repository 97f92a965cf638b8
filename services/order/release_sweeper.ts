/**
 * Every cancelled order gets its stock back: the `OrderCancelled` of a cancel can be
 * dead-lettered on inventory's side (its database down past the retries, a crash loop), and
 * then nobody would ask again. The sweeper sends it again for each `CANCELLED` order whose
 * release inventory has not announced `OUTCOME_TIMEOUT_MS` after the cancel, with the backoff
 * of the outcome sweeper; inventory's cancel is idempotent, and a repeated release changes
 * nothing here.
 * @module
 */
import { errorText, type Logger } from "@campus/shared/log";
import type { Reask } from "./order.ts";
import type { OrderStore } from "./order_store.ts";
import { nextAskAfter, REASK_BATCH, sweepInterval } from "./outcome_sweeper.ts";
import { SweepLoop } from "./sweep_loop.ts";

/** What a {@linkcode ReleaseSweeper} works with. */
export interface ReleaseSweeperOptions {
  /** The orders; several replicas may share them. */
  orders: Pick<OrderStore, "reaskUnreleased">;
  /** `OUTCOME_TIMEOUT_MS`. */
  timeoutMs: number;
  /** Where a failed sweep is reported. */
  log: Logger;
  /** Hears of the cancelled orders asked about again, once that is committed. */
  onReasked?(reasks: readonly Reask[]): void;
  /** Orders per sweep; {@linkcode REASK_BATCH} by default. */
  batchSize?: number;
  /** The clock, in ms since the epoch (tests move it). */
  now?: () => number;
}

/**
 * The background loop that asks inventory again to give back what cancelled orders hold. A
 * sweep that fails is logged and tried again with backoff; nothing it does can end the process.
 */
export class ReleaseSweeper {
  #loop: SweepLoop;

  /** A sweeper over `options.orders`; {@linkcode ReleaseSweeper.start} starts it. */
  constructor(private readonly options: ReleaseSweeperOptions) {
    this.#loop = new SweepLoop({
      sweep: async () => (await this.sweep()).length,
      intervalMs: sweepInterval(options.timeoutMs),
      batchSize: options.batchSize ?? REASK_BATCH,
      log: options.log,
      failed: "cannot ask again for cancelled orders' stock, retrying",
      recovered: "cancelled orders' stock is asked for again",
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

  /** One sweep: sends up to a batch of cancels again; resolves with their orders. */
  async sweep(): Promise<Reask[]> {
    const { orders, timeoutMs, batchSize = REASK_BATCH, now = Date.now } = this.options;
    const reasks = await orders.reaskUnreleased({
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
      this.options.log.error("release re-ask listener failed", { error: errorText(err) });
    }
    for (const { order, asks } of reasks) {
      this.options.log.warn("cancelled order's stock not released yet, cancelling again", {
        order_id: order.order_id,
        asks,
        cancelled_at: order.updated_at,
      });
    }
  }
}
