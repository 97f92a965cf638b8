/**
 * The wire contract: everything that crosses the broker, in one place. The event schemas and
 * their routing keys, the schema version, the envelope (what travels in AMQP properties and
 * headers, built by {@linkcode envelopeFor} and {@linkcode envelopeHeaders}), the decoding of a
 * delivered body, and the names of every header the services set or read. Bodies are flat JSON
 * domain payloads (the compatibility contract), so a hand-published body decodes like ours.
 * The queues and exchanges they travel through are in `topology.ts`.
 * @example Decode a flat body published by hand
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeBody, decodeEvent } from "./contract.ts";
 *
 * const raw = new TextEncoder().encode(
 *   '{"order_id":"o1","item":"Tea","qty":2,"student_id":"S1"}',
 * );
 * const order = decodeEvent("OrderPlaced", decodeBody(raw));
 * assert.deepEqual(order, {
 *   order_id: "o1",
 *   student_id: "S1",
 *   lines: [{ item: "Tea", qty: 2 }],
 *   item: "Tea",
 *   qty: 2,
 * });
 * ```
 * @module
 */
import { z } from "zod";
import { errorText } from "../runtime/redact.ts";

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

/**
 * What a value is, in the words of a validation message: `string`, `null`, `array`, …
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { kindOf } from "./contract.ts";
 *
 * assert.equal(kindOf([1]), "array");
 * assert.equal(kindOf(null), "null");
 * ```
 */
export function kindOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value;
}

/** "`field` is required" for a missing value, "`field` must be a `type`, got `kind`" otherwise. */
const typeError = (field: string, type: string) => (issue: { input?: unknown }) =>
  issue.input === undefined
    ? `${field} is required`
    : `${field} must be ${type}, got ${kindOf(issue.input)}`;

/** A required, trimmed, non-empty text field of at most 100 characters. */
const text = (field: string) =>
  z.string({ error: typeError(field, "a string") }).trim().min(1, `${field} must not be empty`)
    .max(100, `${field} must be at most 100 characters`);

const quantity = z.number({ error: typeError("qty", "a number") })
  .int("qty must be a whole number")
  .positive("qty must be at least 1")
  .max(MAX_QTY, `qty must be at most ${MAX_QTY}`);

/** Most lines one order (a cart) may have. */
export const MAX_LINES = 10;

/** One line of an order: an item and how many of it. */
export type OrderLine = {
  /** Menu item: as sent to `POST /order`, or in the menu's spelling once inventory answered. */
  item: string;
  /** Whole number from 1 to 100. */
  qty: number;
};

/**
 * The fields of one line as the contract checks them (`item`, `qty`), for a request schema that
 * must accept exactly what an event's line carries.
 */
export const orderLineFields = { item: text("item"), qty: quantity };

/**
 * An array of 1 to {@linkcode MAX_LINES} values of `line`, its errors naming `lines`: for a
 * request schema that must accept exactly the lines an event carries. Left out of the generated
 * documentation (`@ignore`), which does not document zod's own types.
 * @ignore
 */
export function linesOf<T extends z.ZodType>(line: T): z.ZodArray<T> {
  return z.array(line, { error: typeError("lines", "an array") })
    .min(1, "lines must have at least 1 line")
    .max(MAX_LINES, `lines must have at most ${MAX_LINES} lines`);
}

// Lines of an event tolerate extra fields, as bodies do.
const orderLines = linesOf(z.object(orderLineFields));

/**
 * Body of an `order.placed` message, as decoded: always with `lines`. A one-line order also
 * carries that line as `item` and `qty`, so a body from before carts (`item`, `qty`, no `lines`)
 * and a one-line cart read the same.
 */
export type OrderPlaced = {
  /** The order's id, also the message's correlation id. */
  order_id: string;
  /** Who ordered. */
  student_id: string;
  /** What was ordered, 1 to {@linkcode MAX_LINES} lines. */
  lines: OrderLine[];
  /** The item of a one-line order. */
  item?: string;
  /** The quantity of a one-line order. */
  qty?: number;
};

/**
 * The fields of a single-item order as the contract checks them (`item`, `qty`, `student_id`),
 * for a request schema that must accept exactly what an `order.placed` event carries.
 */
export const orderFields = {
  item: text("item"),
  qty: quantity,
  student_id: text("student_id"),
};

/** The classic single-item body: its errors name `item` and `qty`, as they always did. */
const singleItem = z.object({ order_id: text("order_id"), ...orderFields });
const cart = z.object({
  order_id: text("order_id"),
  student_id: text("student_id"),
  lines: orderLines,
});

/**
 * A schema over an order body in either shape: `lines` when the body has them, else the classic
 * `item` and `qty`; both decode to a value with `lines`, and a one-line value keeps `item` and
 * `qty` as well. `extra` adds the fields of a result (`reason`, `remaining`).
 */
function eitherShape<E extends z.ZodRawShape, T>(
  extra: E,
  lines: z.ZodType = orderLines,
): BodySchema<T> {
  const withLines = cart.extend({ lines }).extend(extra);
  const classic = singleItem.extend(extra);
  const decode = (value: unknown): z.ZodSafeParseResult<Record<string, unknown>> => {
    const hasLines = typeof value === "object" && value !== null && "lines" in value;
    const parsed = (hasLines ? withLines : classic).safeParse(value) as z.ZodSafeParseResult<
      Record<string, unknown>
    >;
    if (!parsed.success) return parsed;
    const data = parsed.data;
    if (!hasLines) data.lines = [{ item: data.item, qty: data.qty }];
    const lines = data.lines as OrderLine[];
    if (lines.length === 1) {
      data.item = lines[0].item;
      data.qty = lines[0].qty;
    } else {
      delete data.item;
      delete data.qty;
    }
    return parsed;
  };
  return {
    parse(value) {
      const parsed = decode(value);
      if (!parsed.success) throw parsed.error;
      return parsed.data as T;
    },
    safeParse(value) {
      return decode(value) as ParseResult<T>;
    },
  };
}

/**
 * `order.placed`: an order was accepted and needs stock. Extra fields are tolerated.
 * @example A classic body and a one-line cart decode alike
 * ```ts
 * import assert from "node:assert/strict";
 * import { OrderPlaced } from "./contract.ts";
 *
 * const classic = OrderPlaced.parse({ order_id: "o1", item: "Tea", qty: 2, student_id: "S1" });
 * assert.deepEqual(classic.lines, [{ item: "Tea", qty: 2 }]);
 * const cart = OrderPlaced.parse({
 *   order_id: "o2",
 *   student_id: "S1",
 *   lines: [{ item: "Tea", qty: 2 }, { item: "Soup", qty: 1 }],
 * });
 * assert.equal(cart.item, undefined);
 * ```
 */
export const OrderPlaced: BodySchema<OrderPlaced> = eitherShape({});

/** A line stock was set aside for, in the menu's spelling, with what is left of its item. */
export type ReservedLine = OrderLine & {
  /** Stock of the item left after this order. */
  remaining?: number;
};

/**
 * Body of an `inventory.reserved` message: every line of the order was reserved, in the menu's
 * spelling. A one-line order also carries `item`, `qty` and `remaining` flat, as before carts.
 */
export type InventoryReserved = Omit<OrderPlaced, "lines"> & {
  /** Every line of the order, reserved. */
  lines: ReservedLine[];
  /** Stock of the item of a one-line order left after it. */
  remaining?: number;
};

const remaining = z.number().int().nonnegative().optional();

/** `inventory.reserved`: stock was set aside for every line of the order. */
export const InventoryReserved: BodySchema<InventoryReserved> = (() => {
  // A line's `remaining` is read in the same pass; one that is not a count is left out, as
  // it always was, rather than failing the result.
  const reservedLines = linesOf(
    z.object({ ...orderLineFields, remaining: remaining.catch(undefined) }),
  );
  const schema = eitherShape<{ remaining: typeof remaining }, InventoryReserved>(
    { remaining },
    reservedLines,
  );
  // A cart's lines carry their own `remaining`; the flat one belongs to a one-line order.
  const withRemaining = (value: InventoryReserved): InventoryReserved => {
    if (value.lines.length === 1 && value.remaining !== undefined) {
      value.lines = [{ ...value.lines[0], remaining: value.remaining }];
    } else if (value.lines.length === 1 && value.lines[0].remaining !== undefined) {
      value.remaining = value.lines[0].remaining;
    }
    return value;
  };
  const safeParse = (value: unknown): ParseResult<InventoryReserved> => {
    const parsed = schema.safeParse(value);
    if (!parsed.success) return parsed;
    for (const line of parsed.data.lines) {
      if (line.remaining === undefined) delete line.remaining;
    }
    return { success: true, data: withRemaining(parsed.data) };
  };
  return {
    safeParse,
    parse(value) {
      const parsed = safeParse(value);
      if (parsed.success) return parsed.data;
      return schema.parse(value); // throws, naming every bad field
    },
  };
})();

/** Longest `reason` an `InventoryFailed` may carry, in UTF-16 code units (`String.length`). */
export const MAX_REASON_LENGTH = 1000;

/**
 * Cuts a reason built from foreign text (an error message, a client's item name) to at most
 * `max` characters, ending in "…" when cut, so the event that carries it still passes its own
 * schema. A surrogate pair is never split.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fitReason } from "./contract.ts";
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

const reason = z.string({ error: typeError("reason", "a string") }).trim()
  .min(1, "reason must not be empty")
  .max(MAX_REASON_LENGTH, `reason must be at most ${MAX_REASON_LENGTH} characters`);

/** Body of an `inventory.failed` message: the order as it was placed, and why it failed. */
export type InventoryFailed = OrderPlaced & {
  /**
   * Why the order cannot be served, in words for the student; a refused cart names every short
   * line (`Soup: 5 requested, 3 left`).
   */
  reason: string;
};

/** `inventory.failed`: the order cannot be served; nothing of it was reserved. */
export const InventoryFailed: BodySchema<InventoryFailed> = eitherShape({ reason });

/** Who asked for a move: the order's student, or staff. */
export type Actor = "student" | "staff";

const actor = z.enum(["student", "staff"], {
  error: () => "cancelled_by must be student or staff",
});

/** Body of an `order.cancelled` message. */
export type OrderCancelled = OrderPlaced & {
  /** Who cancelled it. */
  cancelled_by: Actor;
  /** Why, when staff said. */
  reason?: string;
  /** The status it was cancelled from: `PLACED` (inventory may not have decided) or `RESERVED`. */
  previous: "PLACED" | "RESERVED";
};

/**
 * `order.cancelled`: the order was cancelled before cooking started. Inventory gives back what
 * it reserved for it, or, when it has not decided yet, makes sure its decision takes nothing.
 */
export const OrderCancelled: BodySchema<OrderCancelled> = eitherShape({
  cancelled_by: actor,
  reason: reason.optional(),
  previous: z.enum(["PLACED", "RESERVED"], {
    error: () => "previous must be PLACED or RESERVED",
  }),
});

/** Body of an `inventory.released` message: the stock of a cancelled order went back. */
export type InventoryReleased = OrderPlaced & {
  /** True when nothing had been reserved: the order's decision was made to take nothing. */
  nothing_reserved?: boolean;
};

/** `inventory.released`: what a cancelled order held is back in stock, exactly once. */
export const InventoryReleased: BodySchema<InventoryReleased> = eitherShape({
  nothing_reserved: z.boolean().optional(),
});

/** A status the kitchen (or the pickup window) moves an order to. */
export type KitchenStatus = "PREPARING" | "READY" | "COLLECTED" | "EXPIRED";

/** Every kitchen status, in the order food goes through them. */
export const KITCHEN_STATUSES: readonly KitchenStatus[] = [
  "PREPARING",
  "READY",
  "COLLECTED",
  "EXPIRED",
];

/** Body of an `order.status_changed` message. */
export type OrderStatusChanged = OrderPlaced & {
  /** The status the order moved to. */
  status: KitchenStatus;
  /** The status it moved from. */
  previous: "RESERVED" | KitchenStatus;
  /** When it moved, an ISO time. */
  changed_at: string;
};

const kitchenStatus = z.enum(["PREPARING", "READY", "COLLECTED", "EXPIRED"], {
  error: () => `status must be one of ${KITCHEN_STATUSES.join(", ")}`,
});

/** `order.status_changed`: staff moved an order through the kitchen, or its pickup expired. */
export const OrderStatusChanged: BodySchema<OrderStatusChanged> = eitherShape({
  status: kitchenStatus,
  previous: z.enum(["RESERVED", ...KITCHEN_STATUSES] as [string, ...string[]], {
    error: () => "previous must be RESERVED or a kitchen status",
  }),
  changed_at: text("changed_at"),
});

/** Every event type, with its routing key and schema. */
export const events = {
  OrderPlaced: { routingKey: "order.placed", schema: OrderPlaced },
  InventoryReserved: { routingKey: "inventory.reserved", schema: InventoryReserved },
  InventoryFailed: { routingKey: "inventory.failed", schema: InventoryFailed },
  OrderCancelled: { routingKey: "order.cancelled", schema: OrderCancelled },
  InventoryReleased: { routingKey: "inventory.released", schema: InventoryReleased },
  OrderStatusChanged: { routingKey: "order.status_changed", schema: OrderStatusChanged },
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
  /** Body of `order.cancelled`. */
  OrderCancelled: OrderCancelled;
  /** Body of `inventory.released`. */
  InventoryReleased: InventoryReleased;
  /** Body of `order.status_changed`. */
  OrderStatusChanged: OrderStatusChanged;
}

/**
 * Version of the body schemas, sent in the `schema-version` header. Version 2 added `lines`
 * (carts) and the cancel, release and kitchen events; a version 1 body still decodes.
 */
export const SCHEMA_VERSION = 2;

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
 * import { envelopeFor } from "./contract.ts";
 *
 * const order = {
 *   order_id: "o1",
 *   student_id: "S1",
 *   lines: [{ item: "Coffee", qty: 1 }],
 * };
 * const event = envelopeFor("OrderPlaced", order);
 * assert.equal(event.routingKey, "order.placed");
 * assert.equal(event.correlationId, "o1");
 * const none = { ...order, lines: [{ item: "Coffee", qty: 0 }] };
 * assert.throws(() => envelopeFor("OrderPlaced", none), TypeError);
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
 * import { decodeEvent, InvalidMessage } from "./contract.ts";
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

/**
 * Reads an `inventory.reserved` or `inventory.failed` message, told apart by routing key.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeInventoryResult } from "./contract.ts";
 *
 * const order = { order_id: "o1", item: "Tea", qty: 1, student_id: "S1" };
 * const result = decodeInventoryResult("inventory.failed", { ...order, reason: "sold out" });
 * assert.equal(result.outcome, "FAILED");
 * ```
 */
export function decodeInventoryResult(routingKey: string, body: unknown): InventoryResult {
  if (routingKey === events.InventoryReserved.routingKey) {
    return { outcome: "RESERVED", event: decodeEvent("InventoryReserved", body) };
  }
  if (routingKey === events.InventoryFailed.routingKey) {
    return { outcome: "FAILED", event: decodeEvent("InventoryFailed", body) };
  }
  throw new InvalidMessage(`unexpected routing key "${routingKey}" for an inventory result`);
}

/**
 * The field an issue is about: its path (`qty`, `lines[1].qty`), the unknown keys of an
 * `unrecognized_keys` issue (`lines[0].price` inside a line), or `(body)` for the value as a
 * whole.
 */
export function fieldOf(issue: ValidationIssue): string {
  // Unknown-key issues name the keys in `keys`, not in `path`: the path is their object's.
  const keys = issue.code === "unrecognized_keys" && issue.keys ? issue.keys.join(",") : "";
  if (issue.path.length) {
    const at = issue.path.map((part, i) =>
      typeof part === "number" ? `[${part}]` : `${i ? "." : ""}${String(part)}`
    ).join("");
    return keys ? `${at}.${keys}` : at;
  }
  return keys || "(body)";
}

/** One line summary of a zod error: `qty: qty must be at least 1; item: ...`. */
export function summarizeIssues(error: { issues: readonly ValidationIssue[] }): string {
  return error.issues.map((issue) => `${fieldOf(issue)}: ${issue.message}`).join("; ");
}

/** Largest message body a consumer will parse; larger ones are dead-lettered. */
export const MAX_MESSAGE_BYTES = 64 * 1024;

/**
 * The JSON value of a delivered body; throws {@linkcode InvalidMessage} when it is larger than
 * {@linkcode MAX_MESSAGE_BYTES} or not JSON. Validate it with {@linkcode decodeEvent}.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeBody, InvalidMessage } from "./contract.ts";
 *
 * assert.deepEqual(decodeBody(new TextEncoder().encode('{"qty":1}')), { qty: 1 });
 * assert.throws(() => decodeBody(new TextEncoder().encode("qty=1")), InvalidMessage);
 * ```
 */
export function decodeBody(body: Uint8Array): unknown {
  if (body.byteLength > MAX_MESSAGE_BYTES) {
    throw new InvalidMessage(
      `body is ${body.byteLength} bytes, more than the ${MAX_MESSAGE_BYTES} allowed`,
    );
  }
  const text = new TextDecoder().decode(body);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new InvalidMessage(`body is not JSON: ${errorText(err)}`);
  }
}

/**
 * The JSON value of a body, or `undefined` when it is not JSON: for readers that only look
 * (the live feed, a dead letter being set aside), where {@linkcode decodeBody} would refuse.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseJson } from "./contract.ts";
 *
 * assert.deepEqual(parseJson(new TextEncoder().encode('{"qty":1}')), { qty: 1 });
 * assert.equal(parseJson(new TextEncoder().encode("qty=1")), undefined);
 * ```
 */
export function parseJson(body: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(body));
  } catch {
    return undefined;
  }
}

// Headers. Every name a service sets on a message or reads from one; the broker's own queue
// arguments (`x-queue-type`, `x-dead-letter-exchange`, …) are in `topology.ts`.

/** Header carrying {@linkcode SCHEMA_VERSION} on every event published. */
export const SCHEMA_VERSION_HEADER = "schema-version";
/** Header carrying the W3C trace context of the span that published the message. */
export const TRACEPARENT_HEADER = "traceparent";
/** Header naming why a message was dead-lettered. */
export const REASON_HEADER = "x-dead-letter-reason";
/**
 * Header naming a dead letter's error id: the one its log line carries, and all a student is
 * shown of the reason.
 */
export const ERROR_ID_HEADER = "x-error-id";
/** Header naming the queue a dead letter was consumed from. */
export const ORIGINAL_QUEUE_HEADER = "x-original-queue";
/** Header saying when a message was dead-lettered (ISO 8601). */
export const DEAD_LETTERED_AT_HEADER = "x-dead-lettered-at";
/** Header counting the retries a message has had. */
export const RETRY_HEADER = "x-retry-count";
/** Header carrying the error of a message's last failed attempt, on its way to a retry. */
export const LAST_ERROR_HEADER = "x-last-error";
/** Header keeping the routing key a message was first published with, across retries. */
export const ROUTING_KEY_HEADER = "x-original-routing-key";
/** Header counting the times a message was set aside because a row it needs was locked. */
export const LOCK_WAITS_HEADER = "x-lock-waits";
/** Header keeping when a message first waited for a lock (ms since the epoch), across waits. */
export const WAITING_SINCE_HEADER = "x-waiting-since";
/** Header of a retry or dead-letter copy naming what was dropped from it, e.g. `message_id (not valid UTF-8)`. */
export const CLEANED_HEADER = "x-copy-cleaned";
/**
 * Header numbering each publish on its channel: a returned message carries it back, which says
 * which publish the broker could not route (the confirm that follows the return does not).
 */
export const PUBLISH_SEQ_HEADER = "x-publish-seq";

/**
 * The headers of an event's envelope: the schema version, and the trace context when tracing
 * is on.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { envelopeHeaders } from "./contract.ts";
 *
 * assert.deepEqual(envelopeHeaders(), { "schema-version": 2 });
 * ```
 */
export function envelopeHeaders(traceparent?: string): Record<string, unknown> {
  const headers: Record<string, unknown> = { [SCHEMA_VERSION_HEADER]: SCHEMA_VERSION };
  if (traceparent !== undefined) headers[TRACEPARENT_HEADER] = traceparent;
  return headers;
}
