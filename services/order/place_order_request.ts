/**
 * The body of `POST /order` and how its faults are told to the client: HTTP concerns of the
 * order service. Its fields are checked by the same rules as the `order.placed` event it
 * becomes (`orderFields` of the wire contract).
 * @module
 */
import { z } from "zod";
import {
  type BodySchema,
  fieldOf,
  kindOf,
  orderFields,
  type ValidationIssue,
} from "@campus/shared/contract";

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
 * import { PlaceOrderRequest } from "./place_order_request.ts";
 *
 * const parsed = PlaceOrderRequest.safeParse({ item: " Coffee ", qty: 0 });
 * assert.equal(parsed.success, false);
 * assert.deepEqual(parsed.error?.issues.map((i) => i.message), [
 *   "qty must be at least 1",
 *   "student_id is required",
 * ]);
 * ```
 */
export const PlaceOrderRequest: BodySchema<PlaceOrderRequest> = z.strictObject(orderFields, {
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

/** Turns a validation error into `{field, message}` pairs a client can act on. */
export function describeIssues(
  error: { issues: readonly ValidationIssue[] },
): { field: string; message: string }[] {
  return error.issues.map((issue) => ({ field: fieldOf(issue), message: issue.message }));
}
