/**
 * `POST /order`: checks the body and the caller, stores the order through the intake (the group
 * commit), and answers 201 with it, or with the order an `Idempotency-Key` made before. Each
 * refusal is an {@linkcode HttpError} built below, naming its field.
 * @module
 */
import { type Caller, forbidden } from "@campus/shared/auth";
import type { Config } from "@campus/shared/config";
import { HttpError, json, readJson, type RouteHandler } from "@campus/shared/http";
import type { Logger } from "@campus/shared/log";
import { activeTraceparent, tagActiveSpan } from "@campus/shared/tracing";
import type { Order, Placement } from "./order.ts";
import { describeIssues, PlaceOrderRequest } from "./place_order_request.ts";
import type { OrderIntake } from "./order_intake.ts";
import type { OrderRateLimit } from "./order_rate_limit.ts";

/** What {@linkcode placeOrder} needs. */
export interface PlaceOrderDeps {
  /** The request timeout and the per-student rate limit. */
  config: Pick<Config, "requestTimeoutMs" | "orderRateLimit">;
  /** Stores orders a group commit at a time. */
  intake: Pick<OrderIntake, "place">;
  /** Limits each student's orders; absent while authentication is off. */
  rateLimit?: Pick<OrderRateLimit, "take">;
  /** Hears of each new order (the live pages). */
  placed(order: Order): void;
  /** Logs each new order. */
  log: Logger;
}

/** The handler of `POST /order`. */
export function placeOrder(
  { config, intake, rateLimit, placed, log }: PlaceOrderDeps,
): RouteHandler {
  return async (req, _params, _url, caller) => {
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
      const { order_id, item, qty, lines, student_id } = order;
      log.info(
        "order placed",
        item === undefined ? { order_id, lines, student_id } : {
          order_id,
          item,
          qty,
          student_id,
        },
      );
      placed(order);
    }
    return json(order, 201, headers);
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
  // Two classic bodies name the flat fields that changed, as they always did; a cart its lines.
  const classic = conflict.previous.item !== undefined && request.item !== undefined;
  const fields = classic
    ? ["item", "qty", "student_id"] as const
    : ["student_id", "lines"] as const;
  const changed = fields
    .filter((field) => JSON.stringify(conflict.previous[field]) !== JSON.stringify(request[field]))
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
