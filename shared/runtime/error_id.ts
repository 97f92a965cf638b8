/**
 * Error ids: what a student is shown of a failure instead of its text, which may hold a
 * driver's statement or a handler's internals. Staff find the text under the same id in the
 * log line and the dead-letter headers that record it.
 * @module
 */

/**
 * A fresh error id: 8 lowercase hex digits, short enough to read out, random enough that two
 * failures in the same week do not share one.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { newErrorId } from "./error_id.ts";
 *
 * assert.match(newErrorId(), /^[0-9a-f]{8}$/);
 * ```
 */
export function newErrorId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(4));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
