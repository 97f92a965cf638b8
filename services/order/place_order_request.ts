/**
 * The body of `POST /order` and how its faults are told to the client: HTTP concerns of the
 * order service. Two shapes: the classic single item (`item`, `qty`, `student_id`) and the cart
 * (`student_id`, `lines`). Their fields are checked by the same rules as the `order.placed`
 * event they become (`orderFields` and `orderLineFields` of the wire contract).
 * @module
 */
import { z } from "zod";
import {
  type BodySchema,
  fieldOf,
  kindOf,
  linesOf,
  orderFields,
  type OrderLine,
  orderLineFields,
  type ParseResult,
  type ValidationIssue,
} from "@campus/shared/contract";
import { menuKey } from "@campus/shared/menu";

/** A validated `POST /order` body: always with its lines, merged; a classic body flat too. */
export type PlaceOrderRequest = {
  /** Who ordered. */
  student_id: string;
  /** What was ordered: 1 to 10 lines, one per item (lines naming the same item merged). */
  lines: OrderLine[];
  /** The item of a classic single-item body, as the student typed it (trimmed). */
  item?: string;
  /** The quantity of a classic single-item body. */
  qty?: number;
};

/** Most of one item an order may ask for, however many lines name it: the contract's cap. */
const MAX_QTY = orderLineFields.qty.maxValue ?? 100;

/** The words of an unknown-field refusal: `unknown field "price"; an order has …`. */
function unknownFields(keys: readonly string[], has: string): string {
  const names = keys.map((k) => `"${k}"`).join(", ");
  return `unknown ${keys.length === 1 ? "field" : "fields"} ${names}; ${has}`;
}

const objectError = (has: string) => (issue: z.core.$ZodRawIssue) => {
  if (issue.code === "invalid_type") return `expected a JSON object, got ${kindOf(issue.input)}`;
  if (issue.code === "unrecognized_keys") return unknownFields(issue.keys, has);
  return undefined;
};

const classic = z.strictObject(orderFields, {
  error: objectError("an order has item, qty and student_id"),
});

const line = z.strictObject(orderLineFields, {
  error: (issue) => {
    if (issue.code === "invalid_type") {
      return `a line must be a JSON object, got ${kindOf(issue.input)}`;
    }
    if (issue.code === "unrecognized_keys") {
      return unknownFields(issue.keys, "a line has item and qty");
    }
    return undefined;
  },
});

const cart = z.strictObject({ student_id: orderFields.student_id, lines: linesOf(line) }, {
  error: objectError("a cart has student_id and lines"),
});

/**
 * The lines with those naming the same item (by {@linkcode menuKey}) merged into the first,
 * their quantities summed; an issue at the line that takes an item over the cap.
 */
function merged(lines: readonly OrderLine[]): ParseResult<OrderLine[]> {
  const byItem = new Map<string, OrderLine>();
  const issues: ValidationIssue[] = [];
  lines.forEach(({ item, qty }, i) => {
    const key = menuKey(item);
    const seen = byItem.get(key);
    if (!seen) {
      byItem.set(key, { item, qty });
      return;
    }
    seen.qty += qty;
    if (seen.qty > MAX_QTY && !issues.some((issue) => issue.path[1] === i)) {
      issues.push({
        code: "too_big",
        path: ["lines", i, "qty"],
        message: `qty of "${seen.item}" adds up to ${seen.qty} over its lines; at most ${MAX_QTY}`,
      });
    }
  });
  return issues.length
    ? { success: false, error: { issues } }
    : { success: true, data: [...byItem.values()] };
}

function safeParse(value: unknown): ParseResult<PlaceOrderRequest> {
  const isCart = typeof value === "object" && value !== null && !Array.isArray(value) &&
    "lines" in value;
  if (!isCart) {
    const parsed = classic.safeParse(value);
    if (!parsed.success) return parsed as ParseResult<PlaceOrderRequest>;
    const { item, qty, student_id } = parsed.data;
    return { success: true, data: { item, qty, student_id, lines: [{ item, qty }] } };
  }
  const parsed = cart.safeParse(value);
  if (!parsed.success) return parsed as ParseResult<PlaceOrderRequest>;
  const lines = merged(parsed.data.lines);
  if (!lines.success) return lines;
  return { success: true, data: { student_id: parsed.data.student_id, lines: lines.data } };
}

/**
 * What a student sends to `POST /order`: the classic `{item, qty, student_id}`, or a cart
 * `{student_id, lines: [{item, qty}, …]}` of 1 to 10 lines. Unknown fields are refused, not
 * ignored; each fault names its field (`lines[1].qty`).
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PlaceOrderRequest } from "./place_order_request.ts";
 *
 * const parsed = PlaceOrderRequest.safeParse({ item: " Coffee ", qty: 0 });
 * assert.equal(parsed.success, false);
 * assert.deepEqual(parsed.error?.issues.map((i) => i.message), [
 *   "qty must be at least 1",
 *   "student_id is required",
 * ]);
 * const cart = PlaceOrderRequest.parse({
 *   student_id: "S1",
 *   lines: [{ item: "Tea", qty: 1 }, { item: "tea", qty: 2 }],
 * });
 * assert.deepEqual(cart.lines, [{ item: "Tea", qty: 3 }]);
 * ```
 */
export const PlaceOrderRequest: BodySchema<PlaceOrderRequest> = {
  safeParse,
  parse(value) {
    const parsed = safeParse(value);
    if (!parsed.success) {
      throw new TypeError(describeIssues(parsed.error).map((d) => d.message).join("; "));
    }
    return parsed.data;
  },
};

/** Turns a validation error into `{field, message}` pairs a client can act on. */
export function describeIssues(
  error: { issues: readonly ValidationIssue[] },
): { field: string; message: string }[] {
  return error.issues.map((issue) => ({ field: fieldOf(issue), message: issue.message }));
}
