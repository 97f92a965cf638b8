/**
 * Consuming, the delivery side of the broker session: how a consumed message becomes a
 * {@linkcode Delivery} that settles itself through the ack window, and how a consumer channel
 * is given up when its handler breaks.
 * @module
 */
// @deno-types="@types/amqplib"
import type { Channel, ConsumeMessage } from "amqplib";
import type { Settlement } from "./_ack_window.ts";
import type { Delivery } from "./message_bus.ts";
import { errorText, type Logger } from "../runtime/log.ts";

/** A queue being consumed: its channel and consumer tag, to cancel it by. */
export interface ConsumerChannel {
  /** The channel the queue is consumed on. */
  channel: Channel;
  /** The consumer tag the broker gave. */
  tag: string;
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
  const p = msg.properties;
  let settled = false;
  return {
    queue,
    body: msg.content,
    routingKey: msg.fields.routingKey,
    messageId: p.messageId ?? undefined,
    type: p.type ?? undefined,
    correlationId: p.correlationId ?? undefined,
    headers: p.headers ?? {},
    redelivered: msg.fields.redelivered,
    get channelOpen() {
      return channelOpen();
    },
    get settled() {
      return settled;
    },
    ack: () => {
      settled = true;
      settlement.ack();
    },
    reject: () => {
      settled = true;
      settle(() => channel.nack(msg, false, false));
      settlement.rejected();
    },
  };
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
