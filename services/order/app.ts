/**
 * The order service: `POST /order`, `GET /orders`, `GET /orders/{id}`, the consumer that
 * moves orders to `RESERVED` or `FAILED` when inventory answers, the sweeper that asks again
 * about orders whose answer is late, and the live pages (the student page at `/`, the kitchen
 * board at `/board`).
 * @module
 */
import { type Caller, forbidden } from "@campus/shared/auth";
import { decodeInventoryResult } from "@campus/shared/events";
import { describeIssues, PlaceOrderRequest } from "./place_order_request.ts";
import { HttpError, json, jsonArray, readJson } from "@campus/shared/http";
import type { ServiceDefinition, ServiceDeps } from "@campus/shared/service";
import { activeTraceparent, tagActiveSpan } from "@campus/shared/tracing";
import { createLivePages, type LivePagesDeps, notYours } from "./live.ts";
import { OrderIntake } from "./order_intake.ts";
import { orderMetrics } from "./order_metrics.ts";
import { openOrderStore, type OrderStatus, type Placement } from "./order_store.ts";
import { OrderRateLimit } from "./order_rate_limit.ts";
import { OutcomeSweeper } from "./outcome_sweeper.ts";
import { pageRoutes } from "./pages.ts";
import { sessionRoutes } from "./session.ts";

const STATUSES: readonly OrderStatus[] = ["PLACED", "RESERVED", "FAILED"];

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
  // Only while authentication is on: the classic lab's clients and the benchmark place many
  // orders for one student id, and must keep working as they always did.
  const rateLimit = auth ? new OrderRateLimit({ limit: config.orderRateLimit }) : undefined;
  return {
    start: () => {
      live.start();
      sweeper.start();
    },
    stop: async () => {
      await Promise.all([live.stop(), sweeper.stop()]);
    },
    routes: [
      ...pageRoutes(),
      ...sessionRoutes(auth),
      ...live.routes,
      {
        method: "POST",
        path: "/order",
        handler: async (req, _params, _url, caller) => {
          const idempotencyKey = idempotencyKeyOf(req);
          const body = await readJson(req, { timeoutMs: config.requestTimeoutMs });
          const parsed = PlaceOrderRequest.safeParse(
            caller?.role === "student" ? withStudent(body, caller) : body,
          );
          if (!parsed.success) {
            const details = describeIssues(parsed.error);
            // Each message names its field: "student_id is required; qty must be a number, got string".
            throw new HttpError(
              400,
              `Invalid order: ${details.map((d) => d.message).join("; ")}`,
              details,
            );
          }
          if (caller?.role === "student" && parsed.data.student_id !== caller.sub) {
            throw forbidden(
              "student_id",
              `student_id must be your own (${caller.sub}): a student token orders only for ` +
                "its student",
            );
          }
          if (rateLimit) {
            const decision = rateLimit.take(parsed.data.student_id);
            if (!decision.allowed) {
              throw tooManyOrders(config.orderRateLimit, decision.retryAfterMs);
            }
          }
          const placement = await intake.place({
            request: parsed.data,
            idempotencyKey,
            traceparent: activeTraceparent(),
          });
          if (placement.kind === "conflict") {
            // A key another student used says nothing of their order to a student.
            if (caller?.role === "student" && placement.previous.student_id !== caller.sub) {
              throw keyTaken();
            }
            throw keyConflict(placement, parsed.data);
          }
          const { order } = placement;
          tagActiveSpan(order.order_id);
          const headers: Record<string, string> = { location: `/orders/${order.order_id}` };
          // A retry answers as the first request did, with the order as it stands now.
          if (placement.kind === "replayed") headers["idempotent-replayed"] = "true";
          else {
            const { order_id, item, qty, student_id } = order;
            log.info("order placed", { order_id, item, qty, student_id });
            live.orderPlaced(order);
          }
          return json(order, 201, headers);
        },
      },
      {
        method: "GET",
        path: "/orders",
        handler: (_req, _params, url, caller) =>
          jsonArray(orders.pages(orderQuery(url.searchParams, caller))),
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
    ],
    subscriptions: {
      order_status: {
        handle: async ({ routingKey, body }) => {
          const result = decodeInventoryResult(routingKey, body);
          const order_id = result.event.order_id;
          if (await orders.applyResult(result)) {
            const reason = result.outcome === "FAILED" ? { reason: result.event.reason } : {};
            db.afterCommit(() => {
              counts.completed(result.outcome);
              log.info("order status changed", { order_id, status: result.outcome, ...reason });
              live.ordersChanged();
            });
          } else {
            db.afterCommit(() =>
              log.warn("duplicate result, order already final", {
                order_id,
                status: result.outcome,
              })
            );
          }
        },
      },
    },
  };
}

/** Header a client sets so that retrying a `POST /order` never places a second order. */
export const IDEMPOTENCY_KEY_HEADER = "Idempotency-Key";

/** The request's `Idempotency-Key`: 1 to 255 printable ASCII characters, or absent. */
function idempotencyKeyOf(req: Request): string | undefined {
  const key = req.headers.get(IDEMPOTENCY_KEY_HEADER);
  if (key === null) return undefined;
  if (!/^[\x20-\x7e]{1,255}$/.test(key)) {
    const message = "must be 1 to 255 printable ASCII characters, e.g. a UUID";
    throw new HttpError(400, `Invalid ${IDEMPOTENCY_KEY_HEADER} header: ${message}`, [
      { field: IDEMPOTENCY_KEY_HEADER, message },
    ]);
  }
  return key;
}

/** 422 for a key already used, naming nothing of the order it made. */
function keyTaken(): HttpError {
  const message = "already used with a different request; use a new key for a new order";
  return new HttpError(422, `${IDEMPOTENCY_KEY_HEADER} ${message}`, [
    { field: IDEMPOTENCY_KEY_HEADER, message },
  ]);
}

/** 422 naming the key, the order it made, and each field the new request changed. */
function keyConflict(
  conflict: Extract<Placement, { kind: "conflict" }>,
  request: PlaceOrderRequest,
): HttpError {
  const changed = (["item", "qty", "student_id"] as const)
    .filter((field) => conflict.previous[field] !== request[field])
    .map((field) => ({
      field,
      message: `was ${JSON.stringify(conflict.previous[field])} with this key, now ${
        JSON.stringify(request[field])
      }`,
    }));
  return new HttpError(
    422,
    `${IDEMPOTENCY_KEY_HEADER} "${conflict.key}" was already used for order ${conflict.orderId} ` +
      `with a different request (${
        changed.map((c) => c.field).join(", ")
      }); use a new key for a new order`,
    [
      { field: IDEMPOTENCY_KEY_HEADER, message: "already used with a different request" },
      ...changed,
    ],
  );
}

/**
 * The body with the student token's `sub` as its `student_id` when it names none: a student
 * orders for themselves without repeating who they are.
 */
function withStudent(body: unknown, caller: Caller): unknown {
  if (body === null || typeof body !== "object" || Array.isArray(body)) return body;
  return "student_id" in body ? body : { ...body, student_id: caller.sub };
}

/** 429 with `Retry-After`, in whole seconds, for a student over the limit. */
function tooManyOrders(limit: number, retryAfterMs: number): HttpError {
  const seconds = Math.max(1, Math.ceil(retryAfterMs / 1000));
  const message = `Too many orders: at most ${limit} per student per minute; ` +
    `try again in ${seconds} s`;
  return new HttpError(429, message, [{ field: "student_id", message }], {
    headers: { "retry-after": String(seconds) },
  });
}

/** The query of `GET /orders`; a student token lists only that student's orders. */
function orderQuery(params: URLSearchParams, caller?: Caller) {
  const status = params.get("status") ?? undefined;
  if (status && !STATUSES.includes(status as OrderStatus)) {
    throw new HttpError(400, `Invalid status "${status}"; use one of ${STATUSES.join(", ")}`, [
      { field: "status", message: `must be one of ${STATUSES.join(", ")}` },
    ]);
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
