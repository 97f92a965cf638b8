/**
 * The consumer of `order_status`: an inventory result moves its order to `RESERVED` or
 * `FAILED`; a duplicate or late one changes nothing and is logged as such.
 * @module
 */
import type { MessageHandler } from "@campus/shared/consumer";
import type { Database } from "@campus/shared/database";
import { decodeInventoryResult } from "@campus/shared/events";
import type { Logger } from "@campus/shared/log";
import type { OrderMetrics } from "./order_metrics.ts";
import type { OrderStore } from "./order_store.ts";

/** What {@linkcode applyInventoryResult} needs. */
export interface ApplyInventoryResultDeps {
  /** The database whose commit the effects wait for. */
  db: Pick<Database, "afterCommit">;
  /** Where the result is recorded. */
  orders: Pick<OrderStore, "applyResult">;
  /** Counts each order that reached its final status. */
  counts: Pick<OrderMetrics, "completed">;
  /** Hears that orders changed (the live pages). */
  ordersChanged(): void;
  /** Logs each change, and each result that changed nothing. */
  log: Logger;
}

/** The handler of an inventory result (`InventoryReserved`, `InventoryFailed`). */
export function applyInventoryResult(
  { db, orders, counts, ordersChanged, log }: ApplyInventoryResultDeps,
): MessageHandler {
  return async ({ routingKey, body }) => {
    const result = decodeInventoryResult(routingKey, body);
    const order_id = result.event.order_id;
    if (await orders.applyResult(result)) {
      const reason = result.outcome === "FAILED" ? { reason: result.event.reason } : {};
      db.afterCommit(() => {
        counts.completed(result.outcome);
        log.info("order status changed", { order_id, status: result.outcome, ...reason });
        ordersChanged();
      });
    } else {
      db.afterCommit(() =>
        log.warn("duplicate result, order already final", {
          order_id,
          status: result.outcome,
        })
      );
    }
  };
}
