/**
 * The consumer of `order_status`: inventory's answers about an order. A result moves it to
 * `RESERVED` or `FAILED`; a release records that a cancelled order's stock is back. A duplicate
 * or late one changes nothing and is logged as such.
 * @module
 */
import type { BatchPreparation, MessageHandler } from "@campus/shared/consumer";
import type { Database } from "@campus/shared/database";
import { decodeEvent, decodeInventoryResult, events } from "@campus/shared/events";
import type { Logger } from "@campus/shared/log";
import type { OrderMetrics } from "./order_metrics.ts";
import type { OrderStore } from "./order_store.ts";

/** What {@linkcode applyInventoryResult} needs. */
export interface ApplyInventoryResultDeps {
  /** The database whose commit the effects wait for. */
  db: Pick<Database, "afterCommit">;
  /** Where the result is recorded. */
  orders: Pick<OrderStore, "applyResult" | "released" | "prepareResults">;
  /** Counts each order that reached its final status. */
  counts: Pick<OrderMetrics, "completed">;
  /** Hears that orders changed (the live pages). */
  ordersChanged(): void;
  /** Logs each change, and each result that changed nothing. */
  log: Logger;
}

/**
 * Readies a batch of inventory's answers: the orders its results are about are read and held
 * at once ({@linkcode OrderStore.prepareResults}). What a malformed body names is left out (its
 * handler dead-letters it).
 */
export function prepareInventoryResults(
  { orders }: Pick<ApplyInventoryResultDeps, "orders">,
): BatchPreparation {
  return (messages) =>
    orders.prepareResults(messages.flatMap(({ routingKey, body }) => {
      if (routingKey === events.InventoryReleased.routingKey) return [];
      const id = (body as { order_id?: unknown } | null)?.order_id;
      return typeof id === "string" ? [id] : [];
    }));
}

/**
 * The handler of inventory's answers: `InventoryReserved`, `InventoryFailed` and
 * `InventoryReleased`, told apart by routing key.
 */
export function applyInventoryResult(
  { db, orders, counts, ordersChanged, log }: ApplyInventoryResultDeps,
): MessageHandler {
  return async ({ routingKey, body }) => {
    if (routingKey === events.InventoryReleased.routingKey) {
      const released = decodeEvent("InventoryReleased", body);
      const order_id = released.order_id;
      const nothing_reserved = released.nothing_reserved === true;
      const outcome = await orders.released(released);
      if (outcome.kind === "released") {
        db.afterCommit(() => {
          log.info("cancelled order's stock released", { order_id, nothing_reserved });
          ordersChanged();
        });
      } else if (outcome.kind === "not_cancelled") {
        // Inventory answered an order.cancelled this service never published (one sent by
        // hand): the order was not cancelled, and its stock is not ours to call released.
        const status = outcome.status;
        db.afterCommit(() =>
          log.warn("release of an order that is not cancelled, ignored", { order_id, status })
        );
      } else {
        db.afterCommit(() =>
          log.warn("duplicate release, or of an order this service never took", { order_id })
        );
      }
      return;
    }
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
        log.warn("duplicate or late result, order no longer waits for one", {
          order_id,
          status: result.outcome,
        })
      );
    }
  };
}
