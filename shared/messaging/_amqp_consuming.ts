/**
 * Consuming, the delivery side of the broker session: a queue consumed on a channel of its own,
 * what arrived together handed to the handler together, each message a {@linkcode Delivery}
 * that settles itself through the ack window, and the channel given up when its handler breaks.
 * @module
 */
// @deno-types="@types/amqplib"
import type { Channel, ChannelModel, ConsumeMessage } from "amqplib";
import { AckWindow, type Settlement } from "./_ack_window.ts";
import type { Delivery, DeliveryHandler } from "./message_bus.ts";
import { errorText, type Logger } from "../runtime/log.ts";

/** A queue being consumed: its channel and consumer tag, to cancel it by. */
export interface ConsumerChannel {
  /** The channel the queue is consumed on. */
  channel: Channel;
  /** The consumer tag the broker gave. */
  tag: string;
}

/** What the session hears from a consumed queue. */
export interface ConsumeOptions {
  /** Where channel errors and broken handlers are logged. */
  log: Logger;
  /** Unacknowledged deliveries on the channel. */
  prefetch: number;
  /** The channel closed (its deliveries come back); the session consumes the queue again. */
  closed(channel: Channel): void;
  /** The broker cancelled the consumer (its queue deleted or moved). */
  cancelled(): void;
  /** A batch was handled and every delivery settled. */
  handled(): void;
  /** A batch's handling started; the session waits for it on shutdown. */
  started(work: Promise<void>): void;
}

/** Consumes `queue` with `handler` on a channel of its own, opened on `connection`. */
export async function consumeQueue(
  connection: ChannelModel,
  queue: string,
  handler: DeliveryHandler,
  { log, prefetch, closed, cancelled, handled, started }: ConsumeOptions,
): Promise<ConsumerChannel> {
  const channel = await connection.createChannel();
  let open = true;
  channel.on(
    "error",
    (err) => log.warn("consumer channel error", { queue, error: errorText(err) }),
  );
  channel.on("close", () => {
    open = false;
    closed(channel);
  });
  await channel.prefetch(prefetch);
  const acks = new AckWindow<ConsumeMessage>(
    (msg) => settle(() => channel.ack(msg, true)),
    (msg) => settle(() => channel.ack(msg, false)),
  );
  let batch: TrackedDelivery[] = [];
  // amqplib parses a whole socket read in one go: what arrived together is handled together.
  const handleBatch = () => {
    const deliveries = batch;
    batch = [];
    started(handle(log, queue, channel, handler, deliveries, handled));
  };
  const { consumerTag } = await channel.consume(queue, (msg) => {
    if (msg === null) {
      cancelled();
      return;
    }
    try {
      if (batch.length === 0) queueMicrotask(handleBatch);
      batch.push(toDelivery(queue, msg, channel, acks.track(msg), () => open));
    } catch (err) {
      abandon(log, queue, channel, err);
    }
  });
  return { channel, tag: consumerTag };
}

/**
 * Runs the handler of a batch. Should anything escape it, or should it return with a
 * delivery unsettled, the channel is closed: the broker then delivers everything the channel
 * held again, instead of holding back every later ack behind one that never comes.
 */
async function handle(
  log: Logger,
  queue: string,
  channel: Channel,
  handler: DeliveryHandler,
  deliveries: TrackedDelivery[],
  handled: () => void,
): Promise<void> {
  try {
    await handler(deliveries);
    const unsettled = deliveries.filter((d) => !d.settled).length;
    if (unsettled > 0) {
      throw new Error(`the handler returned with ${unsettled} deliveries unsettled`);
    }
    handled();
  } catch (err) {
    abandon(log, queue, channel, err);
  }
}

/** A delivery that knows whether it was settled. */
export interface TrackedDelivery extends Delivery {
  /** True once acked or rejected. */
  readonly settled: boolean;
}

/**
 * A consumed message as a delivery handler sees it: its ack goes through the ack
 * window, which acknowledges in order and as few times as it can.
 */
export function toDelivery(
  queue: string,
  msg: ConsumeMessage,
  channel: Channel,
  settlement: Settlement,
  channelOpen: () => boolean,
): TrackedDelivery {
  return new ConsumedDelivery(queue, msg, channel, settlement, channelOpen);
}

/** A class, not an object literal: its getters and methods are made once, not per message. */
class ConsumedDelivery implements TrackedDelivery {
  readonly body: Uint8Array;
  readonly routingKey: string;
  readonly messageId: string | undefined;
  readonly type: string | undefined;
  readonly correlationId: string | undefined;
  readonly headers: Record<string, unknown>;
  readonly redelivered: boolean;
  #settled = false;

  constructor(
    readonly queue: string,
    private readonly msg: ConsumeMessage,
    private readonly channel: Channel,
    private readonly settlement: Settlement,
    private readonly isOpen: () => boolean,
  ) {
    const p = msg.properties;
    this.body = msg.content;
    this.routingKey = msg.fields.routingKey;
    this.messageId = p.messageId ?? undefined;
    this.type = p.type ?? undefined;
    this.correlationId = p.correlationId ?? undefined;
    this.headers = p.headers ?? {};
    this.redelivered = msg.fields.redelivered;
  }

  get channelOpen(): boolean {
    return this.isOpen();
  }

  get settled(): boolean {
    return this.#settled;
  }

  ack(): void {
    this.#settled = true;
    this.settlement.ack();
  }

  reject(): void {
    this.#settled = true;
    settle(() => this.channel.nack(this.msg, false, false));
    this.settlement.rejected();
  }
}

/** Gives up a consumer channel after something unexpected; its deliveries are redelivered. */
export function abandon(log: Logger, queue: string, channel: Channel, err: unknown): void {
  try {
    log.error("delivery path failed; closing the channel so the broker delivers again", {
      queue,
      error: errorText(err),
    });
  } catch {
    // the log itself failing must not keep the channel open
  }
  channel.close().catch(() => {});
}

/** Runs an ack or nack; one on a closed channel is dropped (the message comes back). */
export function settle(action: () => void): void {
  try {
    action();
  } catch {
    // channel closed: the delivery is redelivered after reconnect, and handlers are idempotent
  }
}
