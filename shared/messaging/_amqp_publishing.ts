/**
 * Publishing, the sending side of the broker session: an event as the message it travels as
 * (flat body, envelope in properties and headers), and a batch sent on the confirm channel with
 * every confirm awaited, the returned messages told apart from the other failures.
 * @module
 */
// @deno-types="@types/amqplib"
import type { ChannelModel } from "amqplib";
import { Buffer } from "node:buffer";
import { envelopeHeaders, type OutgoingEvent } from "./contract.ts";
import { ConfirmPublisher } from "./_confirm_publisher.ts";
import { errorText, type Logger } from "../runtime/log.ts";
import { type MessageProperties, UnroutableMessage } from "./message_bus.ts";
import { EXCHANGE } from "./topology.ts";

/** A message to publish. */
export interface Outgoing {
  /** Exchange to publish to; `""` for the default exchange (straight to a queue). */
  exchange: string;
  /** Routing key, or the queue's name on the default exchange. */
  routingKey: string;
  /** The body. */
  content: Uint8Array;
  /** AMQP properties and headers. */
  properties: MessageProperties;
}

/**
 * An event as it is published to `orders_exchange`: its flat JSON body, its envelope in the
 * AMQP properties, and the trace context of its `publish` span, if any, in a header.
 */
export function eventMessage(
  event: OutgoingEvent,
  traceparent: string | undefined,
  timestamp: number,
): Outgoing {
  return {
    exchange: EXCHANGE,
    routingKey: event.routingKey,
    content: Buffer.from(JSON.stringify(event.body)),
    properties: {
      messageId: event.messageId,
      type: event.type,
      correlationId: event.correlationId,
      timestamp,
      headers: envelopeHeaders(traceparent),
    },
  };
}

/** A message the broker returned as unroutable, with the error its publish failed with. */
export interface Returned {
  /** The message, to send again. */
  message: Outgoing;
  /** Why it failed. */
  error: UnroutableMessage;
}

/** Sends and awaits every confirm; returns the returned messages, throws any other failure. */
export async function sendAll(
  publisher: ConfirmPublisher,
  messages: Outgoing[],
): Promise<Returned[]> {
  const results = await Promise.allSettled(
    messages.map((m) => publisher.publish(m.exchange, m.routingKey, m.content, m.properties)),
  );
  const returned: Returned[] = [];
  for (const [i, result] of results.entries()) {
    if (result.status === "fulfilled") continue;
    if (!(result.reason instanceof UnroutableMessage)) throw result.reason;
    returned.push({ message: messages[i], error: result.reason });
  }
  return returned;
}

/** Opens a confirm channel on `connection`; its failures are logged, never thrown. */
export async function openPublisher(
  connection: ChannelModel,
  log: Logger,
): Promise<ConfirmPublisher> {
  const channel = await connection.createConfirmChannel();
  channel.on("error", (err) => log.warn("publish channel error", { error: errorText(err) }));
  return new ConfirmPublisher(
    channel,
    (reason) =>
      log.error("publish channel broken; the next publish opens another", {
        error: errorText(reason),
      }),
  );
}
