/**
 * `deno task dlq list [queue]` shows what was dead-lettered and why, without removing it;
 * `deno task dlq replay <queue> [--max N]` puts dead letters back on their work queue once the
 * cause is fixed. Uses AMQP_URL.
 * @module
 */
// deno-lint-ignore-file no-console -- a terminal program: its output is the point
import { parseArgs } from "node:util";
import { QueueAdmin, type TakenMessage } from "@campus/shared/amqp_admin";
import { ENV_DEFAULTS } from "@campus/shared/config";
import { REASON_HEADER, RETRY_HEADER, ROUTING_KEY_HEADER } from "@campus/shared/consumer";
import { createLogger } from "@campus/shared/log";
import { dlqOf, WORK_QUEUES } from "@campus/shared/topology";

/** Headers that describe a past failure; a replayed message starts clean. */
const FAILURE_HEADERS = [
  REASON_HEADER,
  RETRY_HEADER,
  "x-death",
  "x-last-error",
  "x-original-queue",
  "x-dead-lettered-at",
];

const USAGE = `usage: deno task dlq list [queue]
       deno task dlq replay <queue> [--max N]
queue: a work queue (${WORK_QUEUES.map((q) => q.name).join(", ")}) or its _dlq`;

const { positionals, values } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: { max: { type: "string", default: "1000000" } },
});
const [command, queueArg] = positionals;
const workQueue = queueArg?.replace(/_dlq$/, "");
if (workQueue && !WORK_QUEUES.some((q) => q.name === workQueue)) {
  fail(`unknown queue "${queueArg}"`);
}
const max = Number(values.max);
if (!Number.isInteger(max) || max < 1) fail(`--max must be a positive whole number`);

const broker = new QueueAdmin({
  url: Deno.env.get("AMQP_URL") || ENV_DEFAULTS.AMQP_URL,
  log: createLogger("dlq", "error"),
  name: "dlq-tool",
});
await broker.connect().catch(() => fail(`cannot reach the broker: ${broker.lastError}`));
try {
  if (command === "list") {
    const queues = workQueue ? [workQueue] : WORK_QUEUES.map((q) => q.name);
    for (const queue of queues) {
      for (const message of await broker.take(dlqOf(queue), max, { remove: false })) {
        console.log(JSON.stringify(describe(queue, message)));
      }
    }
  } else if (command === "replay" && workQueue) {
    const moved = await broker.moveMessages(dlqOf(workQueue), max, (message) => ({
      exchange: "",
      routingKey: workQueue,
      properties: { ...message.properties, headers: replayHeaders(message) },
    }));
    console.log(`replayed ${moved} message(s) from ${dlqOf(workQueue)} to ${workQueue}`);
  } else {
    fail(USAGE);
  }
} finally {
  await broker.close();
}

function describe(queue: string, message: TakenMessage) {
  const headers = message.properties.headers;
  return {
    queue: dlqOf(queue),
    reason: headers[REASON_HEADER] ?? "dead-lettered by the broker (see x-death)",
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
