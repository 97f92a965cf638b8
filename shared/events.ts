/**
 * Event schemas of the order pipeline. Bodies are flat JSON domain payloads (the compatibility
 * contract); envelope data travels in AMQP properties, built by {@linkcode envelopeFor}.
 * @module
 */
import { z } from "zod";

/** Largest quantity one order may ask for; protects stock from typos like 1000000. */
export const MAX_QTY = 100;

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

/** What a student sends to `POST /order`. Unknown fields are refused, not ignored. */
export const PlaceOrderRequest = z.strictObject({
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
/** A validated `POST /order` body. */
export type PlaceOrderRequest = z.infer<typeof PlaceOrderRequest>;

/** `order.placed`: an order was accepted and needs stock. Extra fields are tolerated. */
export const OrderPlaced = z.object({
  order_id: text("order_id"),
  item: text("item"),
  qty: quantity,
  student_id: text("student_id"),
});
/** Body of an `order.placed` message. */
export type OrderPlaced = z.infer<typeof OrderPlaced>;

/** `inventory.reserved`: stock was set aside for the order. */
export const InventoryReserved = OrderPlaced.extend({
  remaining: z.number().int().nonnegative().optional(),
});
/** Body of an `inventory.reserved` message. */
export type InventoryReserved = z.infer<typeof InventoryReserved>;

/** Longest `reason` an `InventoryFailed` may carry, in UTF-16 code units (`String.length`). */
export const MAX_REASON_LENGTH = 1000;

/**
 * Cuts a reason built from foreign text (an error message, a client's item name) to at most
 * `max` characters, ending in "…" when cut, so the event that carries it still passes its own
 * schema. A surrogate pair is never split.
 * @example
 * ```ts
 * import { fitReason } from "./events.ts";
 * fitReason("x".repeat(5000)).length; // 1000
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

/** `inventory.failed`: the order cannot be served; `reason` says why, in words for the student. */
export const InventoryFailed = OrderPlaced.extend({
  reason: z.string({ error: typeError("reason", "a string") }).trim()
    .min(1, "reason must not be empty")
    .max(MAX_REASON_LENGTH, `reason must be at most ${MAX_REASON_LENGTH} characters`),
});
/** Body of an `inventory.failed` message. */
export type InventoryFailed = z.infer<typeof InventoryFailed>;

/** Every event type, with its routing key and schema. */
export const events = {
  OrderPlaced: { routingKey: "order.placed", schema: OrderPlaced },
  InventoryReserved: { routingKey: "inventory.reserved", schema: InventoryReserved },
  InventoryFailed: { routingKey: "inventory.failed", schema: InventoryFailed },
} as const;

/** Name of an event type, e.g. `"OrderPlaced"`. */
export type EventType = keyof typeof events;

/** Version of the body schemas, sent in the `schema-version` header. */
export const SCHEMA_VERSION = 1;

/** An event ready to publish: routing key, flat body and envelope. */
export interface OutgoingEvent {
  type: EventType;
  routingKey: string;
  messageId: string;
  correlationId: string;
  body: Record<string, unknown>;
}

/**
 * Builds an outgoing event; the message id is fresh, the correlation id is the order id.
 * Throws `TypeError` when the body does not match the event's schema.
 * @example
 * ```ts
 * const event = envelopeFor("OrderPlaced", { order_id: "o1", item: "Coffee", qty: 1, student_id: "S1" });
 * event.routingKey; // "order.placed"
 * ```
 */
export function envelopeFor<T extends EventType>(
  type: T,
  body: z.infer<(typeof events)[T]["schema"]>,
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
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "InvalidMessage";
  }
}

/**
 * Validates a message body against the schema of `type`; throws {@linkcode InvalidMessage}
 * naming every bad field.
 */
export function decodeEvent<T extends EventType>(
  type: T,
  body: unknown,
): z.infer<(typeof events)[T]["schema"]> {
  const parsed = events[type].schema.safeParse(body);
  if (!parsed.success) {
    throw new InvalidMessage(`invalid ${type}: ${summarizeIssues(parsed.error)}`);
  }
  return parsed.data as z.infer<(typeof events)[T]["schema"]>;
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
export function describeIssues(error: z.ZodError): { field: string; message: string }[] {
  return error.issues.map((issue) => ({
    field: issue.path.length ? issue.path.join(".") : fieldOf(issue),
    message: issue.message,
  }));
}

function fieldOf(issue: z.core.$ZodIssue): string {
  // Unknown-key issues name the keys in `keys`, not in `path`.
  return issue.code === "unrecognized_keys" ? issue.keys.join(",") : "(body)";
}

/** One line summary of a zod error: `qty: qty must be at least 1; item: ...`. */
export function summarizeIssues(error: z.ZodError): string {
  return describeIssues(error).map((d) => `${d.field}: ${d.message}`).join("; ");
}
