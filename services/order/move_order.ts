/**
 * `POST /orders/{id}/cancel` and `POST /orders/{id}/status`: who may ask for a move, and the
 * answer. A move the rules allow is made (committed, with its event) before answering 200 with
 * the order; a repeat of the move the order already made answers 200 and changes nothing; any
 * other move is a 409 with the order's current status. A student may cancel only their own
 * order (another's answers 404, as reads do); the kitchen's moves are staff only (the route's
 * `access`).
 * @module
 */
import type { Caller } from "@campus/shared/auth";
import type { Config } from "@campus/shared/config";
import { HttpError, json, readJson, type RouteHandler } from "@campus/shared/http";
import type { Logger } from "@campus/shared/log";
import type { BodySchema } from "@campus/shared/contract";
import { activeTraceparent, tagActiveSpan } from "@campus/shared/tracing";
import type { MoveRequest, Order } from "./order.ts";
import type { OrderMetrics } from "./order_metrics.ts";
import type { OrderStore } from "./order_store.ts";
import { describeIssues } from "./place_order_request.ts";
import { CancelRequest, StatusRequest } from "./move_order_request.ts";

/** What the move handlers need. */
export interface MoveOrderDeps {
  /** The request timeout. */
  config: Pick<Config, "requestTimeoutMs">;
  /** Where orders are read and moved. */
  orders: Pick<OrderStore, "get" | "move">;
  /** Counts cancels and times the kitchen. */
  counts: Pick<OrderMetrics, "cancelled" | "ready">;
  /** Hears of each move made, once committed (the live pages). */
  changed(order: Order): void;
  /** Logs each move. */
  log: Logger;
}

/** The handler of `POST /orders/{id}/cancel`. */
export function cancelOrder(deps: MoveOrderDeps): RouteHandler {
  return async (req, { id = "" }, _url, caller) => {
    const body = await readBody(req, deps, CancelRequest, "cancel");
    return move(deps, id, caller, {
      to: "CANCELLED",
      by: caller?.role === "staff" ? "staff" : "student",
      reason: body.reason,
    });
  };
}

/** The handler of `POST /orders/{id}/status` (a staff route). */
export function changeOrderStatus(deps: MoveOrderDeps): RouteHandler {
  return async (req, { id = "" }, _url, caller) => {
    const body = await readBody(req, deps, StatusRequest, "status change");
    return move(deps, id, caller, { to: body.status, by: "staff" });
  };
}

async function move(
  { orders, counts, changed, log }: MoveOrderDeps,
  orderId: string,
  caller: Caller | undefined,
  request: Omit<MoveRequest, "orderId">,
): Promise<Response> {
  const order = await orders.get(orderId);
  // Another student's order answers as an unknown one: ids cannot be probed.
  if (!order || (caller?.role === "student" && order.student_id !== caller.sub)) {
    return notFound(orderId);
  }
  tagActiveSpan(orderId);
  const outcome = await orders.move({ ...request, orderId, traceparent: activeTraceparent() });
  if (outcome.kind === "missing") return notFound(orderId);
  if (outcome.kind === "conflict") {
    const { status } = outcome.order;
    return json({
      error: `Cannot move order ${orderId} to ${request.to}: it is ${status}`,
      status,
    }, 409);
  }
  if (outcome.kind === "moved") {
    const { order: moved, previous } = outcome;
    if (moved.status === "CANCELLED") counts.cancelled();
    if (moved.status === "READY" && previous.ready_at === undefined && moved.reserved_at) {
      counts.ready((Date.parse(moved.ready_at!) - Date.parse(moved.reserved_at)) / 1000);
    }
    log.info("order status changed", {
      order_id: orderId,
      status: moved.status,
      previous: previous.status,
      by: request.by,
    });
    changed(moved);
  }
  return json(outcome.order);
}

/** The body as `schema` reads it; no body at all is an empty object (nothing said). */
async function readBody<T>(
  req: Request,
  { config }: MoveOrderDeps,
  schema: BodySchema<T>,
  what: string,
): Promise<T> {
  const empty = req.body === null || req.headers.get("content-length") === "0";
  const body = empty ? {} : await readJson(req, { timeoutMs: config.requestTimeoutMs });
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  const details = describeIssues(parsed.error);
  throw new HttpError(
    400,
    `Invalid ${what}: ${details.map((d) => d.message).join("; ")}`,
    details,
  );
}

function notFound(id: string): Response {
  return json({ error: `Order "${id}" not found` }, 404);
}
