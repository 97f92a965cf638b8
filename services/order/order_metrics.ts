/**
 * The order service's own metrics: orders placed, completed, asked about again, cancelled and
 * expired (counted once committed), how long the kitchen took from `RESERVED` to `READY`, and
 * the age of the oldest order still waiting for inventory (read from the store at each scrape).
 * @module
 */
import { Counter, Histogram } from "prom-client";
import type { ServiceMetrics } from "@campus/shared/metrics";
import type { OrderStore } from "./order_store.ts";

/** Counts of what became of orders. */
export interface OrderMetrics {
  /** `n` new orders were committed. */
  placed(n: number): void;
  /** An order reached its final status, committed. */
  completed(status: "RESERVED" | "FAILED"): void;
  /** `n` late orders were asked about again (a new `OrderPlaced` committed for each). */
  reasked(n: number): void;
  /** `n` cancelled orders had their `OrderCancelled` sent again (their stock not yet back). */
  releaseReasked(n: number): void;
  /** An order was cancelled, committed. */
  cancelled(): void;
  /** `n` orders expired uncollected, committed. */
  expired(n: number): void;
  /** An order was `READY` for the first time, `seconds` after it was `RESERVED`. */
  ready(seconds: number): void;
}

/** Adds the order metrics to the service's registry. */
export function orderMetrics(metrics: ServiceMetrics, orders: OrderStore): OrderMetrics {
  const registers = [metrics.registry];
  const placed = new Counter({
    name: "campus_orders_placed_total",
    help: "New orders committed (an Idempotency-Key replay is not a new order).",
    registers,
  });
  const completed = new Counter({
    name: "campus_orders_completed_total",
    help: "Orders that reached a final status, by status.",
    labelNames: ["status"],
    registers,
  });
  const reasked = new Counter({
    name: "campus_orders_reasked_total",
    help: "Times an order waited longer than OUTCOME_TIMEOUT_MS and inventory was asked again.",
    registers,
  });
  const releaseReasked = new Counter({
    name: "campus_orders_release_reasked_total",
    help: "Times a cancelled order's stock was not back OUTCOME_TIMEOUT_MS after the cancel " +
      "(and after each ask) and its OrderCancelled was sent again.",
    registers,
  });
  const cancelled = new Counter({
    name: "campus_orders_cancelled_total",
    help: "Orders cancelled (by their student or by staff), each once.",
    registers,
  });
  const expired = new Counter({
    name: "campus_orders_expired_total",
    help: "READY orders not collected within PICKUP_WINDOW_MS, moved to EXPIRED.",
    registers,
  });
  const ready = new Histogram({
    name: "campus_order_ready_seconds",
    help: "Time from RESERVED to the first READY of an order: how long the kitchen took.",
    // A kitchen's minutes, from a coffee to a long queue at lunch.
    buckets: [30, 60, 120, 300, 600, 900, 1200, 1800, 3600],
    registers,
  });
  const byStatus = { RESERVED: completed.labels("RESERVED"), FAILED: completed.labels("FAILED") };
  byStatus.RESERVED.inc(0);
  byStatus.FAILED.inc(0);
  metrics.gauge(
    "campus_orders_oldest_pending_seconds",
    "Age of the oldest order still PLACED (waiting for inventory); 0 when none waits.",
    async () => {
      const at = await orders.oldestPlacedAt();
      return at === undefined ? 0 : Math.max(0, (Date.now() - at) / 1000);
    },
  );
  return {
    placed: (n) => placed.inc(n),
    completed: (status) => byStatus[status].inc(),
    reasked: (n) => reasked.inc(n),
    releaseReasked: (n) => releaseReasked.inc(n),
    cancelled: () => cancelled.inc(),
    expired: (n) => expired.inc(n),
    ready: (seconds) => ready.observe(seconds),
  };
}
