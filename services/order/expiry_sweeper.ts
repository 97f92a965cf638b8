/**
 * Food that is never collected expires: the sweeper moves each order `READY` for longer than
 * `PICKUP_WINDOW_MS` to `EXPIRED`, with its `OrderStatusChanged`. It sweeps every
 * min(5 s, window / 2), so an order expires within 10 s of its window's end; replicas sharing
 * the database may all sweep, each expiring other orders (see `OrderStore.expireOverdue`).
 * @module
 */
import { errorText, type Logger } from "@campus/shared/log";
import type { Order } from "./order.ts";
import type { OrderStore } from "./order_store.ts";
import { SweepLoop } from "./sweep_loop.ts";

/** Orders expired in one sweep, at most: one transaction of bounded size. */
export const EXPIRY_BATCH = 100;

/**
 * Time between sweeps: half the window, at most 5 s (and at least 50 ms), so that an order
 * expires well within 10 s of its window's end.
 * @example
 * ```ts
 * import { expiryInterval } from "./expiry_sweeper.ts";
 * expiryInterval(1_800_000); // 5000
 * expiryInterval(2000); // 1000
 * ```
 */
export function expiryInterval(windowMs: number): number {
  return Math.max(50, Math.min(5000, windowMs / 2));
}

/** What an {@linkcode ExpirySweeper} works with. */
export interface ExpirySweeperOptions {
  /** The orders; several replicas may share them. */
  orders: Pick<OrderStore, "expireOverdue">;
  /** `PICKUP_WINDOW_MS`. */
  windowMs: number;
  /** Where a failed sweep is reported, and each expiry. */
  log: Logger;
  /** Hears of the orders expired, once that is committed. */
  onExpired?(orders: readonly Order[]): void;
  /** Orders per sweep; {@linkcode EXPIRY_BATCH} by default. */
  batchSize?: number;
  /** The clock, in ms since the epoch (tests move it). */
  now?: () => number;
}

/** The background loop that expires orders not collected in time. */
export class ExpirySweeper {
  #loop: SweepLoop;

  /** A sweeper over `options.orders`; {@linkcode ExpirySweeper.start} starts it. */
  constructor(private readonly options: ExpirySweeperOptions) {
    this.#loop = new SweepLoop({
      sweep: async () => (await this.sweep()).length,
      intervalMs: expiryInterval(options.windowMs),
      batchSize: options.batchSize ?? EXPIRY_BATCH,
      log: options.log,
      failed: "cannot expire uncollected orders, retrying",
      recovered: "uncollected orders are expired again",
    });
  }

  /** Starts the loop; its first sweep comes at once. */
  start(): void {
    this.#loop.start();
  }

  /** Stops the loop; resolves once a sweep under way has ended. */
  stop(): Promise<void> {
    return this.#loop.stop();
  }

  /** One sweep: expires up to a batch of overdue orders; resolves with them. */
  async sweep(): Promise<Order[]> {
    const { orders, windowMs, batchSize = EXPIRY_BATCH, now = Date.now } = this.options;
    const expired = await orders.expireOverdue(now(), windowMs, batchSize);
    if (expired.length > 0) this.#tell(expired);
    return expired;
  }

  /** Logs and reports the orders expired; a listener that throws stops neither. */
  #tell(expired: readonly Order[]): void {
    for (const order of expired) {
      this.options.log.info("order expired, not collected in time", {
        order_id: order.order_id,
        ready_at: order.ready_at,
      });
    }
    try {
      this.options.onExpired?.(expired);
    } catch (err) {
      this.options.log.error("expiry listener failed", { error: errorText(err) });
    }
  }
}
