import assert from "node:assert/strict";
import type { TakenMessage } from "@campus/testing/amqp_admin";
import { deadLetterTable } from "./dead_letter_report.ts";

const letter = (messageId: string, reason?: string): TakenMessage => ({
  body: new Uint8Array(),
  routingKey: "order_placed_dlq",
  properties: {
    messageId,
    headers: reason === undefined ? {} : { "x-dead-letter-reason": reason },
  },
});

Deno.test("deadLetterTable() shows counts and first reasons, and says when a queue is empty", () => {
  const table = deadLetterTable([
    {
      queue: "order_placed_dlq",
      count: 5,
      first: [
        letter("m-1", "failed after 4 attempts: database is locked"),
        letter("m-2", `body is not JSON:\n${"x".repeat(500)}`),
        letter("m-3"),
      ],
    },
    { queue: "order_status_dlq", count: 0, first: [] },
  ]);
  const lines = table.split("\n");
  assert.deepEqual(lines.map((l) => l.split(/\s{2,}/).slice(0, 3)), [
    ["QUEUE", "COUNT", "MESSAGE ID"],
    ["order_placed_dlq", "5", "m-1"],
    [
      "",
      "m-2",
      "body is not JSON: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…",
    ],
    ["", "m-3", "dead-lettered by the broker (see x-death)"],
    ["", "(2 more)"],
    ["order_status_dlq", "0", "empty, nothing dead-lettered"],
  ]);
  assert.ok(lines[1].endsWith("failed after 4 attempts: database is locked"));
  assert.ok(lines.every((l) => l.length <= 140), "a reason is cut to fit a line");
});
