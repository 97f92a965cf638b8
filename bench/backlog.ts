/** Backlog drain: orders pile up while inventory is down, then drain once it is back. */
import type { OrderView } from "../tests/support.ts";
import { finality, type Placement, placeOrders, waitUntilFinal } from "./load.ts";
import { perSecond, round } from "./stats.ts";

/** Figures of the backlog drain. */
export interface BacklogResult {
  orders: number;
  accepted: number;
  errors: number;
  /** Messages waiting in `order_placed` when inventory was started. */
  queued: number;
  /** From starting the inventory process until it answered `/health`. */
  startup_ms: number;
  /** From inventory answering `/health` until the last order was final. */
  seconds_to_drain: number;
  /** Orders made final per second while draining (inventory start-up excluded). */
  orders_per_s: number;
  /** The same, counting inventory's start-up as part of the drain. */
  orders_per_s_with_startup: number;
  unfinished: number;
}

/** What the backlog phase needs from the stack. */
export interface BacklogOptions {
  orderUrl: string;
  count: number;
  concurrency: number;
  items: readonly string[];
  studentId: string;
  stopInventory: () => Promise<void>;
  startInventory: () => Promise<void>;
  queueDepth: (queue: string) => Promise<number>;
  timeoutMs: number;
  /** Called with a short description of where the phase stands. */
  onProgress?: (text: string) => void;
}

/** The drain as run: orders placed and timestamps taken, figures still to be read. */
export interface BacklogRun {
  orders: number;
  studentId: string;
  placement: Placement;
  queued: number;
  /** Wall-clock ms when inventory was started, and when it answered `/health`. */
  startRequestedAt: number;
  upAt: number;
}

/**
 * Stops inventory, places `count` orders, waits until all their `OrderPlaced` events sit in
 * `order_placed`, starts inventory again and waits until every order is final. The figures
 * come from {@linkcode summarizeBacklog} once the orders are listed.
 */
export async function runBacklog(options: BacklogOptions): Promise<BacklogRun> {
  const { orderUrl, count, studentId, onProgress } = options;
  await options.stopInventory();
  const placement = await placeOrders({
    orderUrl,
    count,
    concurrency: options.concurrency,
    studentId,
    items: options.items,
    onProgress: (n) => onProgress?.(`inventory down, placed ${n}/${count}`),
  });
  const expected = placement.accepted.length;
  const queueDeadline = performance.now() + options.timeoutMs;
  let queued = 0;
  while ((queued = await options.queueDepth("order_placed")) < expected) {
    if (performance.now() > queueDeadline) {
      throw new Error(`Only ${queued} of ${expected} OrderPlaced events reached order_placed`);
    }
    onProgress?.(`waiting for the outbox: ${queued}/${expected} queued`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }

  const startRequestedAt = Date.now();
  await options.startInventory();
  const upAt = Date.now();
  let shownAt = -Infinity;
  await waitUntilFinal({
    orderUrl,
    studentId,
    timeoutMs: options.timeoutMs,
    intervalMs: 100,
    onPoll: async (waited) => {
      // A queue depth costs the broker a channel; once a second is plenty for progress.
      if (waited - shownAt < 1000) return;
      shownAt = waited;
      const left = await options.queueDepth("order_placed").catch(() => NaN);
      onProgress?.(`draining: ${left} left in order_placed`);
    },
  });
  return { orders: count, studentId, placement, queued, startRequestedAt, upAt };
}

/** The figures of the drain, given its orders as the order service lists them. */
export function summarizeBacklog(run: BacklogRun, listed: readonly OrderView[]): BacklogResult {
  const { placement, upAt, startRequestedAt } = run;
  const fin = finality(placement.accepted, listed);
  return {
    orders: run.orders,
    accepted: placement.accepted.length,
    errors: placement.errors,
    queued: run.queued,
    startup_ms: upAt - startRequestedAt,
    seconds_to_drain: fin.final ? round((fin.lastFinalAt - upAt) / 1000, 2) : NaN,
    orders_per_s: fin.final ? perSecond(fin.final, fin.lastFinalAt - upAt) : 0,
    orders_per_s_with_startup: fin.final
      ? perSecond(fin.final, fin.lastFinalAt - startRequestedAt)
      : 0,
    unfinished: fin.unfinished,
  };
}
