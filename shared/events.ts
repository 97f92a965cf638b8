/**
 * Event schemas of the order pipeline. Bodies are flat JSON domain payloads (the compatibility
 * contract); envelope data travels in AMQP properties, built by {@linkcode envelopeFor}.
 * @module
 */
import { z } from "zod";

/** Largest quantity one order may ask for; protects stock from typos like 1000000. */
const MAX_QTY = 100;

/** One reason a value failed its schema: the field (`path`) and a message naming it. */
export interface ValidationIssue {
  /** Kind of failure, e.g. `invalid_type` or `unrecognized_keys`. */
  code: string;
  /** Where in the value: `["qty"]`; empty for the value as a whole. */
  path: PropertyKey[];
  /** What is wrong, naming the field: `qty must be at least 1`. */
  message: string;
  /** The unknown field names of an `unrecognized_keys` issue. */
  keys?: string[];
}

/** The outcome of {@linkcode BodySchema.safeParse}: the typed value, or every issue found. */
export type ParseResult<T> =
  | { success: true; data: T }
  | { success: false; error: { issues: ValidationIssue[] } };

/** A message or request body schema: checks an unknown value and types it. */
export interface BodySchema<T> {
  /** The value, trimmed and typed; throws, naming every bad field, when one is. */
  parse(value: unknown): T;
  /** The value, trimmed and typed, or the issues naming every bad field; never throws. */
  safeParse(value: unknown): ParseResult<T>;
}

/** What a value is, in the words of a validation message: `string`, `null`, `array`, … */
function kindOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value;
}

/** "`field` is required" for a missing value, "`field` must be a `type`, got `kind`" otherwise. */
const typeError = (field: string, type: string) => (issue: { input?: unknown }) =>
  issue.input === undefined
    ? `${field} is required`
    : `${field} must be ${type}, got ${kindOf(issue.input)}`;

const text = (field: string) =>
  z.string({ error: typeError(field, "a string") }).trim().min(1, `${field} must not be empty`)
    .max(100, `${field} must be at most 100 characters`);

const quantity = z.number({ error: typeError("qty", "a number") })
  .int("qty must be a whole number")
  .positive("qty must be at least 1")
  .max(MAX_QTY, `qty must be at most ${MAX_QTY}`);

/** A validated `POST /order` body. */
export type PlaceOrderRequest = {
  /** Menu item, as the student typed it (trimmed). */
  item: string;
  /** Whole number from 1 to 100. */
  qty: number;
  /** Who ordered. */
  student_id: string;
};

/**
 * What a student sends to `POST /order`. Unknown fields are refused, not ignored.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PlaceOrderRequest } from "./events.ts";
 *
 * const parsed = PlaceOrderRequest.safeParse({ item: " Coffee ", qty: 0 });
 * assert.equal(parsed.success, false);
 * assert.deepEqual(parsed.error?.issues.map((i) => i.message), [
 *   "qty must be at least 1",
 *   "student_id is required",
 * ]);
 * ```
 */
export const PlaceOrderRequest: BodySchema<PlaceOrderRequest> = z.strictObject({
  item: text("item"),
  qty: quantity,
  student_id: text("student_id"),
}, {
  error: (issue) => {
    if (issue.code === "invalid_type") return `expected a JSON object, got ${kindOf(issue.input)}`;
    if (issue.code === "unrecognized_keys") {
      const names = issue.keys.map((k) => `"${k}"`).join(", ");
      const fields = issue.keys.length === 1 ? "field" : "fields";
      return `unknown ${fields} ${names}; an order has item, qty and student_id`;
    }
    return undefined;
  },
});
/** Body of an `order.placed` message. */
export type OrderPlaced = {
  /** The order's id, also the message's correlation id. */
  order_id: string;
  /** Menu item: as sent to `POST /order`. */
  item: string;
  /** Whole number from 1 to 100. */
  qty: number;
  /** Who ordered. */
  student_id: string;
};

const orderPlaced = z.object({
  order_id: text("order_id"),
  item: text("item"),
  qty: quantity,
  student_id: text("student_id"),
});

/** `order.placed`: an order was accepted and needs stock. Extra fields are tolerated. */
export const OrderPlaced: BodySchema<OrderPlaced> = orderPlaced;

/** Body of an `inventory.reserved` message; `item` has the menu's own spelling. */
export type InventoryReserved = OrderPlaced & {
  /** Stock of the item left after this order. */
  remaining?: number;
};

/** `inventory.reserved`: stock was set aside for the order. */
export const InventoryReserved: BodySchema<InventoryReserved> = orderPlaced.extend({
  remaining: z.number().int().nonnegative().optional(),
});

/** Longest `reason` an `InventoryFailed` may carry, in UTF-16 code units (`String.length`). */
export const MAX_REASON_LENGTH = 1000;

/**
 * Cuts a reason built from foreign text (an error message, a client's item name) to at most
 * `max` characters, ending in "…" when cut, so the event that carries it still passes its own
 * schema. A surrogate pair is never split.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fitReason } from "./events.ts";
 *
 * const reason = fitReason("x".repeat(5000));
 * assert.equal(reason.length, 1000);
 * assert.ok(reason.endsWith("…"));
 * ```
 */
export function fitReason(reason: string, max = MAX_REASON_LENGTH): string {
  const text = reason.trim();
  if (text.length <= max) return text;
  let end = max - 1;
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--; // keep a surrogate pair whole
  return text.slice(0, end) + "…";
}

/** Body of an `inventory.failed` message. */
export type InventoryFailed = OrderPlaced & {
  /** Why the order cannot be served, in words for the student. */
  reason: string;
};

/** `inventory.failed`: the order cannot be served; `reason` says why, in words for the student. */
export const InventoryFailed: BodySchema<InventoryFailed> = orderPlaced.extend({
  reason: z.string({ error: typeError("reason", "a string") }).trim()
    .min(1, "reason must not be empty")
    .max(MAX_REASON_LENGTH, `reason must be at most ${MAX_REASON_LENGTH} characters`),
});

/** Every event type, with its routing key and schema. */
export const events = {
  OrderPlaced: { routingKey: "order.placed", schema: OrderPlaced },
  InventoryReserved: { routingKey: "inventory.reserved", schema: InventoryReserved },
  InventoryFailed: { routingKey: "inventory.failed", schema: InventoryFailed },
} as const;

/** Name of an event type, e.g. `"OrderPlaced"`. */
export type EventType = keyof typeof events;

/** The body type of each event type. */
export interface EventBodies {
  /** Body of `order.placed`. */
  OrderPlaced: OrderPlaced;
  /** Body of `inventory.reserved`. */
  InventoryReserved: InventoryReserved;
  /** Body of `inventory.failed`. */
  InventoryFailed: InventoryFailed;
}

/** Version of the body schemas, sent in the `schema-version` header. */
export const SCHEMA_VERSION = 1;

/** An event ready to publish: routing key, flat body and envelope. */
export interface OutgoingEvent {
  /** Event type, sent as the AMQP `type` property. */
  type: EventType;
  /** Routing key on `orders_exchange`. */
  routingKey: string;
  /** Fresh id of this message, the AMQP `message_id`. */
  messageId: string;
  /** The order id, the AMQP `correlation_id`. */
  correlationId: string;
  /** The flat JSON body. */
  body: Record<string, unknown>;
  /**
   * W3C trace context of what caused the event (the request or the message handled), kept in
   * the outbox with it; set only with tracing on.
   */
  traceparent?: string;
}

/**
 * Builds an outgoing event; the message id is fresh, the correlation id is the order id.
 * Throws `TypeError` when the body does not match the event's schema.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { envelopeFor } from "./events.ts";
 *
 * const order = { order_id: "o1", item: "Coffee", qty: 1, student_id: "S1" };
 * const event = envelopeFor("OrderPlaced", order);
 * assert.equal(event.routingKey, "order.placed");
 * assert.equal(event.correlationId, "o1");
 * assert.throws(() => envelopeFor("OrderPlaced", { ...order, qty: 0 }), TypeError);
 * ```
 */
export function envelopeFor<T extends EventType>(
  type: T,
  body: EventBodies[T],
): OutgoingEvent {
  // Checked on the way out too: a body its own consumers would refuse is a bug found here, in
  // the transaction that made it, rather than later in a dead-letter queue.
  const parsed = events[type].schema.safeParse(body);
  if (!parsed.success) {
    throw new TypeError(`Cannot publish ${type}: ${summarizeIssues(parsed.error)}`);
  }
  return {
    type,
    routingKey: events[type].routingKey,
    messageId: crypto.randomUUID(),
    correlationId: body.order_id,
    body,
  };
}

/** A message that can never be handled (not JSON, wrong schema): dead-letter it, never retry. */
export class InvalidMessage extends Error {
  /** A message, and optionally its `cause`. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "InvalidMessage";
  }
}

/**
 * Validates a message body against the schema of `type`; throws {@linkcode InvalidMessage}
 * naming every bad field.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeEvent, InvalidMessage } from "./events.ts";
 *
 * const order = decodeEvent("OrderPlaced", { order_id: "o1", item: "Tea", qty: 2, student_id: "S" });
 * assert.equal(order.qty, 2);
 * assert.throws(() => decodeEvent("OrderPlaced", { order_id: "o1" }), InvalidMessage);
 * ```
 */
export function decodeEvent<T extends EventType>(
  type: T,
  body: unknown,
): EventBodies[T] {
  const parsed = events[type].schema.safeParse(body);
  if (!parsed.success) {
    throw new InvalidMessage(`invalid ${type}: ${summarizeIssues(parsed.error)}`);
  }
  return parsed.data as EventBodies[T];
}

/** An inventory outcome as the order and notification services consume it. */
export type InventoryResult =
  | { outcome: "RESERVED"; event: InventoryReserved }
  | { outcome: "FAILED"; event: InventoryFailed };

/** Reads an `inventory.reserved` or `inventory.failed` message, told apart by routing key. */
export function decodeInventoryResult(routingKey: string, body: unknown): InventoryResult {
  if (routingKey === events.InventoryReserved.routingKey) {
    return { outcome: "RESERVED", event: decodeEvent("InventoryReserved", body) };
  }
  if (routingKey === events.InventoryFailed.routingKey) {
    return { outcome: "FAILED", event: decodeEvent("InventoryFailed", body) };
  }
  throw new InvalidMessage(`unexpected routing key "${routingKey}" for an inventory result`);
}

/** Turns a zod error into `{field, message}` pairs a client can act on. */
export function describeIssues(
  error: { issues: readonly ValidationIssue[] },
): { field: string; message: string }[] {
  return error.issues.map((issue) => ({
    field: issue.path.length ? issue.path.join(".") : fieldOf(issue),
    message: issue.message,
  }));
}

function fieldOf(issue: ValidationIssue): string {
  // Unknown-key issues name the keys in `keys`, not in `path`.
  return issue.code === "unrecognized_keys" && issue.keys ? issue.keys.join(",") : "(body)";
}

/** One line summary of a zod error: `qty: qty must be at least 1; item: ...`. */
export function summarizeIssues(error: { issues: readonly ValidationIssue[] }): string {
  return describeIssues(error).map((d) => `${d.field}: ${d.message}`).join("; ");
}
