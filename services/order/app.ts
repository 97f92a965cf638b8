/**
 * The order service: `POST /order`, `GET /orders`, `GET /orders/{id}`, the moves
 * (`POST /orders/{id}/cancel`, `POST /orders/{id}/status`), the consumer that moves orders to
 * `RESERVED` or `FAILED` when inventory answers (and hears stock released), the sweepers that
 * ask again about orders whose answer or release is late and expire food not collected, and the
 * live pages (the student page at `/`, the kitchen board at `/board`).
 * @module
 */
import type { Caller } from "@campus/shared/auth";
import { HttpError, json, jsonArray } from "@campus/shared/http";
import type { ServiceDefinition, ServiceDeps } from "@campus/shared/service";
import { applyInventoryResult, prepareInventoryResults } from "./inventory_result.ts";
import { createLivePages, type LivePagesDeps, notYours } from "./pages/live.ts";
import { ORDER_STATUSES, type OrderStatus } from "./order.ts";
import { OrderIntake } from "./order_intake.ts";
import { orderMetrics } from "./order_metrics.ts";
import { openOrderStore } from "./order_store.ts";
import { OrderRateLimit } from "./order_rate_limit.ts";
import { OutcomeSweeper } from "./outcome_sweeper.ts";
import { ExpirySweeper } from "./expiry_sweeper.ts";
import { ReleaseSweeper } from "./release_sweeper.ts";
import { cancelOrder, changeOrderStatus, type MoveOrderDeps } from "./move_order.ts";
import { placeOrder } from "./place_order.ts";
import { pageRoutes } from "./pages/pages.ts";
import { sessionRoutes } from "./pages/session.ts";

export { IDEMPOTENCY_KEY_HEADER } from "./place_order.ts";

/** Test replacements for the broker and inventory parts of the live pages. */
export type LiveOptions = Partial<Omit<LivePagesDeps, "config" | "orders" | "log">>;

/** Builds the order service from its dependencies. */
export async function createOrderService(
  { config, db, outbox, log, metrics, auth, queueDepths }: ServiceDeps,
  liveOptions: LiveOptions = {},
): Promise<ServiceDefinition<"order">> {
  const orders = await openOrderStore(db, outbox);
  const counts = orderMetrics(metrics, orders);
  const intake = new OrderIntake(orders, counts);
  metrics.gauge(
    "campus_order_intake_pending",
    "Orders received by POST /order and not answered yet: waiting for their group's commit.",
    () => intake.pending,
  );
  const live = createLivePages({ config, orders, log, queueDepths, ...liveOptions });
  const sweeper = new OutcomeSweeper({
    orders,
    timeoutMs: config.outcomeTimeoutMs,
    log,
    onReasked: (reasks) => counts.reasked(reasks.length),
  });
  const releases = new ReleaseSweeper({
    orders,
    timeoutMs: config.outcomeTimeoutMs,
    log,
    onReasked: (reasks) => counts.releaseReasked(reasks.length),
  });
  const expiry = new ExpirySweeper({
    orders,
    windowMs: config.pickupWindowMs,
    log,
    onExpired: (expired) => {
      counts.expired(expired.length);
      for (const order of expired) live.orderChanged(order);
    },
  });
  const moves: MoveOrderDeps = {
    config,
    orders,
    counts,
    changed: (order) => live.orderChanged(order),
    log,
  };
  // Only while authentication is on: the classic lab's clients and the benchmark place many
  // orders for one student id, and must keep working as they always did.
  const rateLimit = auth ? new OrderRateLimit({ limit: config.orderRateLimit }) : undefined;
  return {
    start: () => {
      live.start();
      sweeper.start();
      releases.start();
      expiry.start();
    },
    stop: async () => {
      await Promise.all([live.stop(), sweeper.stop(), releases.stop(), expiry.stop()]);
    },
    routes: [
      ...pageRoutes(),
      ...sessionRoutes(auth),
      ...live.routes,
      {
        method: "POST",
        path: "/order",
        handler: placeOrder({
          config,
          intake,
          rateLimit,
          placed: (order) => live.orderPlaced(order),
          log,
        }),
      },
      {
        method: "GET",
        path: "/orders",
        handler: (_req, _params, url, caller) =>
          jsonArray(orders.batches(orderQuery(url.searchParams, caller))),
      },
      {
        method: "GET",
        path: "/orders/:id",
        handler: async (_req, { id }, _url, caller) => {
          const order = await orders.get(id ?? "");
          // Another student's order answers as an unknown one: ids cannot be probed.
          const visible = order && (caller?.role !== "student" || order.student_id === caller.sub);
          return visible ? json(order) : json({ error: `Order "${id}" not found` }, 404);
        },
      },
      { method: "POST", path: "/orders/:id/cancel", handler: cancelOrder(moves) },
      {
        method: "POST",
        path: "/orders/:id/status",
        // The kitchen's moves: a student token gets 403.
        access: "staff",
        handler: changeOrderStatus(moves),
      },
    ],
    subscriptions: {
      order_status: {
        prepareBatch: prepareInventoryResults({ orders }),
        handle: applyInventoryResult({
          db,
          orders,
          counts,
          ordersChanged: () => live.ordersChanged(),
          log,
        }),
      },
    },
  };
}

/** The query of `GET /orders`; a student token lists only that student's orders. */
function orderQuery(params: URLSearchParams, caller?: Caller) {
  const status = params.get("status") ?? undefined;
  if (status && !ORDER_STATUSES.includes(status as OrderStatus)) {
    throw new HttpError(
      400,
      `Invalid status "${status}"; use one of ${ORDER_STATUSES.join(", ")}`,
      [
        { field: "status", message: `must be one of ${ORDER_STATUSES.join(", ")}` },
      ],
    );
  }
  const limitText = params.get("limit");
  const limit = limitText === null ? undefined : Number(limitText);
  if (limit !== undefined && !(Number.isInteger(limit) && limit > 0)) {
    throw new HttpError(400, `Invalid limit "${limitText}"; use a positive whole number`, [
      { field: "limit", message: "must be a positive whole number" },
    ]);
  }
  let student_id = params.get("student_id") ?? undefined;
  if (caller?.role === "student") {
    if (student_id !== undefined && student_id !== caller.sub) throw notYours(caller);
    student_id = caller.sub;
  }
  return {
    student_id,
    status: status as OrderStatus | undefined,
    limit,
  };
}
