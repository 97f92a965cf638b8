/**
 * `deno task dlq list [queue]` shows each dead-letter queue with its count and first reasons,
 * without removing anything; `deno task dlq replay <queue>` puts the dead letters waiting now
 * back on their work queue once the cause is fixed, and names each one it moved. Uses AMQP_URL
 * (a node of the cluster, or several), QUEUE_TYPE and MAX_DELIVERIES as the services do.
 * @module
 */
// deno-lint-ignore-file no-console -- a terminal program: its output is the point
import { parseArgs } from "node:util";
import { QueueAdmin, type TakenMessage } from "@campus/testing/amqp_admin";
import { ENV_DEFAULTS, topologyOptions } from "@campus/shared/config";
import {
  ERROR_ID_HEADER,
  REASON_HEADER,
  RETRY_HEADER,
  ROUTING_KEY_HEADER,
} from "@campus/shared/consumer";
import { fitReason } from "@campus/shared/events";
import { createLogger, errorText } from "@campus/shared/log";
import { dlqOf, WORK_QUEUES } from "@campus/shared/topology";
import { deadLetterTable, idOf, type QueueSummary, reasonOf } from "./dead_letter_report.ts";

/** Headers that describe a past failure; a replayed message starts clean. */
const FAILURE_HEADERS = [
  REASON_HEADER,
  ERROR_ID_HEADER,
  RETRY_HEADER,
  "x-death",
  "x-last-error",
  "x-original-queue",
  "x-dead-lettered-at",
];

/** Messages per queue the table shows unless --max says otherwise. */
const SHOWN_PER_QUEUE = 3;

const USAGE = `usage: deno task dlq list [queue] [--max N] [--json]
       deno task dlq replay <queue> [--max N]
queue: a work queue (${WORK_QUEUES.map((q) => q.name).join(", ")}) or its _dlq
list: a table of each queue's count and first reasons (--max N: reasons shown per queue, default
      ${SHOWN_PER_QUEUE}); --json prints every message (up to --max) as a JSON line instead
replay: moves the messages waiting when it starts (at most --max), never one it already moved`;

const { positionals, values } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: { max: { type: "string" }, json: { type: "boolean", default: false } },
});
const [command, queueArg] = positionals;
const workQueue = queueArg?.replace(/_dlq$/, "");
if (workQueue && !WORK_QUEUES.some((q) => q.name === workQueue)) {
  fail(`unknown queue "${queueArg}"\n${USAGE}`);
}
const max = values.max === undefined ? undefined : Number(values.max);
if (max !== undefined && !(Number.isInteger(max) && max >= 1)) {
  fail(`--max must be a positive whole number, got "${values.max}"`);
}

const broker = new QueueAdmin({
  url: Deno.env.get("AMQP_URL") || ENV_DEFAULTS.AMQP_URL,
  topology: topologyOptions(),
  log: createLogger("dlq", "error"),
  name: "dlq-tool",
});
await broker.connect().catch(() => fail(`cannot reach the broker: ${broker.lastError}`));
try {
  if (command === "list") {
    await list(workQueue ? [workQueue] : WORK_QUEUES.map((q) => q.name));
  } else if (command === "replay" && workQueue) {
    await replay(workQueue, max ?? Infinity);
  } else {
    fail(USAGE);
  }
} finally {
  await broker.close();
}

async function list(queues: string[]): Promise<void> {
  if (values.json) {
    for (const queue of queues) {
      for (const message of await broker.take(dlqOf(queue), max ?? 1e9, { remove: false })) {
        console.log(JSON.stringify(describe(queue, message)));
      }
    }
    return;
  }
  const summaries: QueueSummary[] = [];
  for (const queue of queues) {
    const count = await broker.queueDepth(dlqOf(queue));
    const shown = Math.min(count, max ?? SHOWN_PER_QUEUE);
    const first = shown > 0 ? await broker.take(dlqOf(queue), shown, { remove: false }) : [];
    summaries.push({ queue: dlqOf(queue), count, first });
  }
  console.log(deadLetterTable(summaries));
}

/**
 * Moves at most the messages waiting when it starts: one that fails again comes back behind
 * them, so it is never moved twice in one run however fast it returns.
 */
async function replay(queue: string, limit: number): Promise<void> {
  const dlq = dlqOf(queue);
  const waiting = await broker.queueDepth(dlq);
  if (waiting === 0) {
    console.log(`${dlq} is empty: nothing to replay`);
    return;
  }
  const taken: TakenMessage[] = [];
  let moved: number;
  let failure: unknown;
  try {
    moved = await broker.moveMessages(dlq, Math.min(waiting, limit), (message) => {
      taken.push(message);
      return {
        exchange: "",
        routingKey: queue,
        properties: { ...message.properties, headers: replayHeaders(message) },
      };
    });
  } catch (err) {
    // Every message taken before the last one was confirmed and acknowledged; the last one
    // stays in the DLQ (its copy may have reached the queue too: replays are idempotent).
    moved = Math.max(0, taken.length - 1);
    failure = err;
  }
  for (const message of taken.slice(0, moved)) {
    console.log(`moved ${idOf(message)}  ${fitReason(reasonOf(message), 100)}`);
  }
  if (failure) fail(`replay stopped after ${moved} message(s): ${errorText(failure)}`);
  const left = waiting - moved;
  console.log(
    `replayed ${moved} message(s) from ${dlq} to ${queue}` +
      (left > 0 ? `; ${left} left waiting (--max)` : ""),
  );
}

function describe(queue: string, message: TakenMessage) {
  const headers = message.properties.headers;
  return {
    queue: dlqOf(queue),
    reason: reasonOf(message),
    // What the student was shown, and the service's log line names.
    error_id: headers[ERROR_ID_HEADER],
    routing_key: headers[ROUTING_KEY_HEADER] ?? message.routingKey,
    message_id: message.properties.messageId,
    dead_lettered_at: headers["x-dead-lettered-at"],
    body: new TextDecoder().decode(message.body.subarray(0, 500)),
  };
}

function replayHeaders(message: TakenMessage): Record<string, unknown> {
  const headers = { ...message.properties.headers };
  // Keep the key it was first published with: the consumer reads the event type from it.
  headers[ROUTING_KEY_HEADER] ??= firstDeathRoutingKey(headers) ?? message.routingKey;
  for (const name of FAILURE_HEADERS) delete headers[name];
  return { ...headers, "x-replayed-at": new Date().toISOString() };
}

function firstDeathRoutingKey(headers: Record<string, unknown>): string | undefined {
  const deaths = headers["x-death"];
  if (!Array.isArray(deaths)) return undefined;
  const keys = (deaths.at(-1) as { "routing-keys"?: unknown })?.["routing-keys"];
  return Array.isArray(keys) && typeof keys[0] === "string" ? keys[0] : undefined;
}

function fail(message: string): never {
  console.error(message);
  Deno.exit(2);
}
