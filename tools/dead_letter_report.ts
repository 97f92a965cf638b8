/**
 * How `deno task dlq` shows dead letters: a compact table of each dead-letter queue with its
 * count and first few reasons, saying so when a queue is empty.
 * @module
 */
import type { TakenMessage } from "@campus/testing/amqp_admin";
import { REASON_HEADER } from "@campus/shared/consumer";
import { fitReason } from "@campus/shared/events";

/** Widest a reason is shown in the table; the full text is in `list --json`. */
const REASON_WIDTH = 100;

/** One dead-letter queue as the table shows it. */
export interface QueueSummary {
  queue: string;
  /** Messages waiting in it. */
  count: number;
  /** The first few of them, oldest first. */
  first: TakenMessage[];
}

/** Why a message was dead-lettered: our header, or the broker's own record of it. */
export function reasonOf(message: TakenMessage): string {
  const reason = message.properties.headers[REASON_HEADER];
  return typeof reason === "string" ? reason : "dead-lettered by the broker (see x-death)";
}

/** A message's id as the table shows it. */
export function idOf(message: TakenMessage): string {
  return message.properties.messageId ?? "(no message id)";
}

/**
 * The table: a row per queue with its count, then a line per shown message (id and reason),
 * then how many more wait; an empty queue says so.
 * @example
 * ```ts
 * import { deadLetterTable } from "./dead_letter_report.ts";
 * deadLetterTable([{ queue: "order_status_dlq", count: 0, first: [] }]);
 * // QUEUE             COUNT  MESSAGE ID  REASON
 * // order_status_dlq      0  empty, nothing dead-lettered
 * ```
 */
export function deadLetterTable(summaries: readonly QueueSummary[]): string {
  const rows: [string, string, string, string][] = [["QUEUE", "COUNT", "MESSAGE ID", "REASON"]];
  for (const { queue, count, first } of summaries) {
    if (count === 0) {
      rows.push([queue, "0", "empty, nothing dead-lettered", ""]);
      continue;
    }
    first.forEach((message, i) => {
      const reason = fitReason(reasonOf(message).replace(/\s+/g, " "), REASON_WIDTH);
      rows.push([i === 0 ? queue : "", i === 0 ? String(count) : "", idOf(message), reason]);
    });
    if (first.length === 0) rows.push([queue, String(count), "", ""]);
    if (count > first.length) rows.push(["", "", `(${count - first.length} more)`, ""]);
  }
  // The id column is sized by real ids only: "empty, …" may run into the reason column.
  const widths = [0, 1, 2].map((c) =>
    Math.max(...rows.filter((r) => c !== 2 || r[3] !== "").map((r) => r[c].length))
  );
  return rows.map(([queue, count, id, reason]) =>
    [queue.padEnd(widths[0]), count.padStart(widths[1]), reason ? id.padEnd(widths[2]) : id, reason]
      .filter((cell, i) => i < 3 || cell !== "")
      .join("  ")
      .trimEnd()
  ).join("\n");
}
