/**
 * Queue operations for tools and tests, over a plain connection of their own: read messages off
 * a queue, move them elsewhere, count them, and publish by hand. Not for services, which use
 * the self-healing session in `amqp.ts` (its `queueDepths` reads depths without declaring).
 * Each connect declares the topology exactly as the services do, from the same options.
 * @module
 */
// @deno-types="@types/amqplib"
import type { Channel, ChannelModel, GetMessage } from "amqplib";
import { errorText, type Logger } from "./runtime/log.ts";
import { ConfirmPublisher } from "./messaging/_confirm_publisher.ts";
import { BrokerNodes, closeConnection, declareTopology } from "./messaging/_connection.ts";
import { BrokerUnavailable, type MessageProperties } from "./messaging/message_bus.ts";
import type { TopologyOptions } from "./messaging/topology.ts";

/** A message read off a queue with {@linkcode QueueAdmin.take}. */
export interface TakenMessage {
  /** The body as it was published. */
  body: Uint8Array;
  /** The routing key it was published with. */
  routingKey: string;
  /** Its AMQP properties; `headers` is always present. */
  properties: MessageProperties & { headers: Record<string, unknown> };
}

/** Where {@linkcode QueueAdmin.moveMessages} sends a message. */
export interface Destination {
  /** Exchange to publish to; `""` for the default exchange (straight to a queue). */
  exchange: string;
  /** Routing key, or the queue's name on the default exchange. */
  routingKey: string;
  /** Properties of the moved copy. */
  properties: MessageProperties;
}

/** Options of {@linkcode QueueAdmin}. */
export interface QueueAdminOptions {
  /** The broker, or the nodes of a cluster (a list, or comma-separated), tried in turn. */
  url: string | readonly string[];
  /**
   * How the queues are declared: the services' own options (`topologyOptions()` in
   * `config.ts`, from the same `QUEUE_TYPE` and `MAX_DELIVERIES`). Other arguments are refused
   * by the broker, or on a fresh broker make a queue of the wrong type before the services
   * declare theirs; so there is no default to fall back on.
   */
  topology: TopologyOptions;
  /** Connection name shown by the broker. */
  name: string;
  /** Hears connection errors; they also surface as failed operations. */
  log?: Logger;
}

/**
 * A connection for queue operations. It connects on first use, and again on the next use after
 * the connection was lost; each connect declares the topology, so every queue it names exists.
 */
export class QueueAdmin {
  #connection: ChannelModel | undefined;
  #connecting: Promise<ChannelModel> | undefined;
  #publisher: ConfirmPublisher | undefined;
  #lastError = "";
  #nodes: BrokerNodes;

  /** Connects nothing yet: the first operation does. */
  constructor(private readonly options: QueueAdminOptions) {
    this.#nodes = new BrokerNodes(options.url);
  }

  /** True while the connection is open. */
  get connected(): boolean {
    return this.#connection !== undefined;
  }

  /** Why the last connect failed. */
  get lastError(): string {
    return this.#lastError;
  }

  /** Connects now unless connected; throws {@linkcode BrokerUnavailable} naming why it cannot. */
  async connect(): Promise<void> {
    await this.#open();
  }

  /**
   * Takes up to `max` messages off `queue` (basic.get). With `remove` false they are put back
   * after reading, so a queue can be listed without emptying it.
   */
  async take(queue: string, max: number, { remove = true } = {}): Promise<TakenMessage[]> {
    const channel = await this.#channel();
    const taken: TakenMessage[] = [];
    try {
      while (taken.length < max) {
        const msg = await channel.get(queue, { noAck: false });
        if (msg === false) break;
        taken.push(toTaken(msg));
        if (remove) channel.ack(msg);
      }
    } finally {
      // Closing the channel returns every unacknowledged message to the queue.
      await channel.close().catch(() => {});
    }
    return taken;
  }

  /**
   * Moves up to `max` messages off `queue` to where `destination` says, each acknowledged only
   * after its copy was confirmed and routed: a crash in between duplicates a message, never
   * loses one. Returns how many moved.
   */
  async moveMessages(
    queue: string,
    max: number,
    destination: (message: TakenMessage) => Destination,
  ): Promise<number> {
    const connection = await this.#open();
    const channel = await connection.createConfirmChannel();
    channel.on("error", () => {}); // surfaces as a failed get or publish below
    const publisher = new ConfirmPublisher(channel);
    let moved = 0;
    try {
      while (moved < max) {
        const msg = await channel.get(queue, { noAck: false });
        if (msg === false) break;
        const to = destination(toTaken(msg));
        await publisher.publish(to.exchange, to.routingKey, msg.content, to.properties);
        channel.ack(msg);
        moved++;
      }
    } finally {
      await channel.close().catch(() => {});
    }
    return moved;
  }

  /** Number of ready messages in `queue` (a passive declare). */
  async queueDepth(queue: string): Promise<number> {
    const channel = await this.#channel();
    try {
      return (await channel.checkQueue(queue)).messageCount;
    } finally {
      await channel.close().catch(() => {});
    }
  }

  /** Publishes raw content, persistent, mandatory and confirmed, as an operator's script would. */
  async publish(
    exchange: string,
    routingKey: string,
    content: Uint8Array,
    properties: MessageProperties = {},
  ): Promise<void> {
    if (!this.#publisher?.usable) {
      const connection = await this.#open();
      const channel = await connection.createConfirmChannel();
      channel.on("error", () => {}); // surfaces as a failed publish
      this.#publisher = new ConfirmPublisher(channel);
    }
    await this.#publisher.publish(exchange, routingKey, content, properties);
  }

  /** Publishes raw content to a queue through the default exchange. */
  sendToQueue(
    queue: string,
    content: Uint8Array,
    properties: MessageProperties = {},
  ): Promise<void> {
    return this.publish("", queue, content, properties);
  }

  /** Closes the connection; unacknowledged messages go back to their queues. */
  async close(): Promise<void> {
    const connection = this.#connection;
    this.#connection = undefined;
    this.#publisher = undefined;
    if (connection) await closeConnection(connection);
  }

  async #channel(): Promise<Channel> {
    const channel = await (await this.#open()).createChannel();
    channel.on("error", () => {}); // surfaces as the failed operation
    return channel;
  }

  #open(): Promise<ChannelModel> {
    if (this.#connection) return Promise.resolve(this.#connection);
    return this.#connecting ??= (async () => {
      const { name, log, topology } = this.options;
      let connection: ChannelModel | undefined;
      try {
        connection = await this.#nodes.connect(
          name,
          (err) => log?.warn("queue admin connection error", { error: errorText(err) }),
        );
        const opened = connection;
        connection.on("close", () => {
          if (this.#connection !== opened) return;
          this.#connection = undefined;
          this.#publisher = undefined;
          this.#nodes.moveOn();
        });
        await declareTopology(connection, topology);
        this.#connection = connection;
        this.#lastError = "";
        return connection;
      } catch (err) {
        if (connection) await closeConnection(connection);
        this.#lastError = errorText(err);
        throw new BrokerUnavailable(`Cannot reach the broker: ${errorText(err)}`, { cause: err });
      } finally {
        this.#connecting = undefined;
      }
    })();
  }
}

function toTaken(msg: GetMessage): TakenMessage {
  const p = msg.properties;
  return {
    body: msg.content,
    routingKey: msg.fields.routingKey,
    properties: {
      messageId: p.messageId ?? undefined,
      type: p.type ?? undefined,
      correlationId: p.correlationId ?? undefined,
      headers: p.headers ?? {},
    },
  };
}
