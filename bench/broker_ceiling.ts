/** The broker ceiling: persistent publishes with confirms plus consume-and-ack, nothing else. */
import { BrokerSession } from "@campus/shared/amqp";
import { QueueAdmin } from "@campus/testing/amqp_admin";
import { topologyOptions } from "@campus/shared/config";
import { createLogger } from "@campus/shared/log";
import { redactUrl } from "@campus/shared/redact";
import { dlqOf } from "@campus/shared/topology";
import { perSecond, round } from "./stats.ts";

/** What the broker sustains with no service work around it. */
export interface CeilingResult {
  messages: number;
  /** Unconfirmed publishes allowed at once. */
  publish_window: number;
  /** Unacknowledged deliveries the consumer may hold (the services' default). */
  prefetch: number;
  seconds: number;
  /** Publishes confirmed per second, up to the last confirm. */
  publish_per_s: number;
  /** Messages published, confirmed, delivered and acknowledged per second: the ceiling. */
  messages_per_s: number;
}

/** Settings of {@linkcode measureBrokerCeiling}. */
export interface CeilingOptions {
  publishWindow?: number;
  prefetch?: number;
  timeoutMs?: number;
  /** Called about five times a second with the counts so far. */
  onProgress?: (published: number, consumed: number) => void;
}

/**
 * The BrokerSession offers no queue declaration of its own, so the measurement borrows a
 * dead-letter queue: a plain durable queue that no service consumes and that is empty before
 * orders flow.
 */
const QUEUE = dlqOf("order_status");

/**
 * Publishes `messages` persistent messages of an order's size through the project's
 * BrokerSession (confirms on), while a second connection consumes and acknowledges them; the
 * rate from the first publish to the last ack is the ceiling every pipeline figure is read
 * against.
 */
export async function measureBrokerCeiling(
  amqpUrl: string,
  messages: number,
  { publishWindow = 1000, prefetch = 100, timeoutMs = 180_000, onProgress }: CeilingOptions = {},
): Promise<CeilingResult> {
  const log = createLogger("bench", "error");
  // The queues as the services declare them (QUEUE_TYPE, MAX_DELIVERIES): every connection
  // declaring them must agree, or the broker refuses it.
  const topology = topologyOptions();
  const publisher = new BrokerSession({
    url: amqpUrl,
    topology,
    log,
    prefetch: 1,
    name: "bench-publisher",
  });
  const consumer = new BrokerSession({
    url: amqpUrl,
    topology,
    log,
    prefetch,
    name: "bench-consumer",
  });
  let ticker: ReturnType<typeof setInterval> | undefined;
  try {
    await publisher.start();
    await consumer.start();
    if (!publisher.connected || !consumer.connected) {
      throw new Error(
        `Cannot connect to ${redactUrl(amqpUrl)}: ${publisher.lastError || consumer.lastError}`,
      );
    }
    const admin = new QueueAdmin({ url: amqpUrl, topology, name: "bench-admin" });
    const left = await admin.queueDepth(QUEUE).finally(() => admin.close());
    if (left !== 0) throw new Error(`${QUEUE} must be empty for the ceiling, holds ${left}`);

    let published = 0;
    let consumed = 0;
    let allConsumed!: () => void;
    const consumedAll = new Promise<void>((resolve) => allConsumed = resolve);
    await consumer.subscribe(QUEUE, (deliveries) => {
      for (const delivery of deliveries) delivery.ack();
      consumed += deliveries.length;
      if (consumed === messages) allConsumed();
      return Promise.resolve();
    });
    ticker = setInterval(() => onProgress?.(published, consumed), 200);

    const body = new TextEncoder().encode(JSON.stringify({
      order_id: crypto.randomUUID(),
      item: "Coffee",
      qty: 1,
      student_id: "bench-ceiling",
    }));
    const started = performance.now();
    await publishWindowed(messages, publishWindow, (i) =>
      publisher.publish("", QUEUE, body, {
        messageId: `ceiling-${i}`,
        type: "OrderPlaced",
        correlationId: `ceiling-${i}`,
        timestamp: Math.floor(Date.now() / 1000),
        headers: { "schema-version": 1 },
      }).then(() => {
        published++;
      }));
    const confirmedMs = performance.now() - started;
    await withTimeout(consumedAll, timeoutMs, `${messages} messages to be consumed`);
    const totalMs = performance.now() - started;
    onProgress?.(published, consumed);
    return {
      messages,
      publish_window: publishWindow,
      prefetch,
      seconds: round(totalMs / 1000, 2),
      publish_per_s: perSecond(messages, confirmedMs),
      messages_per_s: perSecond(messages, totalMs),
    };
  } finally {
    clearInterval(ticker);
    await consumer.stopConsuming(2000).catch(() => {});
    await consumer.close();
    await publisher.close();
  }
}

/** Runs `publish(0..count-1)` with at most `window` unsettled at once; rejects on the first error. */
async function publishWindowed(
  count: number,
  window: number,
  publish: (i: number) => Promise<void>,
): Promise<void> {
  let inFlight = 0;
  let failure: unknown;
  let wake: (() => void) | undefined;
  const settled = () => {
    inFlight--;
    const w = wake;
    wake = undefined;
    w?.();
  };
  for (let i = 0; i < count; i++) {
    while (inFlight >= window) await new Promise<void>((resolve) => wake = resolve);
    if (failure) throw failure;
    inFlight++;
    publish(i).then(settled, (err) => {
      failure ??= err;
      settled();
    });
  }
  while (inFlight > 0) await new Promise<void>((resolve) => wake = resolve);
  if (failure) throw failure;
}

async function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
