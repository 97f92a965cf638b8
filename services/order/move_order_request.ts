/**
 * The bodies of `POST /orders/{id}/cancel` (optional `{"reason"}`) and
 * `POST /orders/{id}/status` (`{"status"}`): HTTP concerns of the order service. Unknown fields
 * are refused, and each fault names its field.
 * @module
 */
import { z } from "zod";
import { type BodySchema, kindOf, MAX_REASON_LENGTH } from "@campus/shared/contract";
import type { MoveTarget } from "./order.ts";

/** A validated cancel body. */
export type CancelRequest = {
  /** Why, trimmed, 1 to 1000 characters; absent when not said. */
  reason?: string;
};

/** A validated status body. */
export type StatusRequest = {
  /** The kitchen step the order should go to. */
  status: Exclude<MoveTarget, "CANCELLED">;
};

/** The statuses staff may ask for. */
export const STAFF_STATUSES: readonly StatusRequest["status"][] = [
  "PREPARING",
  "READY",
  "COLLECTED",
];

const objectError = (has: string) => (issue: z.core.$ZodRawIssue) => {
  if (issue.code === "invalid_type") return `expected a JSON object, got ${kindOf(issue.input)}`;
  if (issue.code === "unrecognized_keys") {
    const names = issue.keys.map((k) => `"${k}"`).join(", ");
    return `unknown ${issue.keys.length === 1 ? "field" : "fields"} ${names}; ${has}`;
  }
  return undefined;
};

/**
 * The body of a cancel: `{}` or `{"reason": "..."}`.
 * @example
 * ```ts
 * import { CancelRequest } from "./move_order_request.ts";
 * CancelRequest.parse({ reason: " the fryer is broken " }); // { reason: "the fryer is broken" }
 * ```
 */
export const CancelRequest: BodySchema<CancelRequest> = z.strictObject({
  reason: z.string({
    error: (issue) => `reason must be a string, got ${kindOf(issue.input)}`,
  }).trim().min(1, "reason must not be empty")
    .max(MAX_REASON_LENGTH, `reason must be at most ${MAX_REASON_LENGTH} characters`)
    .optional(),
}, { error: objectError("a cancel may have a reason") });

/**
 * The body of a kitchen move: `{"status": "PREPARING" | "READY" | "COLLECTED"}`.
 * @example
 * ```ts
 * import { StatusRequest } from "./move_order_request.ts";
 * StatusRequest.parse({ status: "READY" }); // { status: "READY" }
 * ```
 */
export const StatusRequest: BodySchema<StatusRequest> = z.strictObject({
  status: z.enum(["PREPARING", "READY", "COLLECTED"], {
    error: (issue) =>
      issue.input === undefined
        ? "status is required"
        : `status must be one of ${STAFF_STATUSES.join(", ")}, got ${JSON.stringify(issue.input)}`,
  }),
}, { error: objectError("a status change has status") });
