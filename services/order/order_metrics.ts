/**
 * The order service's own metrics: orders placed, completed and asked about again (counted once
 * committed) and the age of the oldest order still waiting for inventory (read from the store at
 * each scrape).
 * @module
 */
import { Counter } from "prom-client";
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
  };
}
