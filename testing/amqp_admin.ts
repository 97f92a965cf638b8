/**
 * Queue operations for tools and tests, over a plain connection of their own: read messages off
 * a queue, move them elsewhere, count them, and publish by hand. Test and tool support, kept out
 * of the services' package (`@campus/shared`), which they reach only through its plain queue
 * access (`@campus/shared/queue_access`). Services use the self-healing session in
 * `shared/messaging/amqp.ts` instead (its `queueDepths` reads depths without declaring). Each
 * connect declares the topology exactly as the services do, from the same options.
 * @module
 */
import { errorText, type Logger } from "@campus/shared/log";
import { BrokerUnavailable, type MessageProperties } from "@campus/shared/message_bus";
import {
  type QueueChannel,
  type QueueConnection,
  QueueConnector,
  type QueueMessage,
  type QueuePublisher,
} from "@campus/shared/queue_access";
import type { TopologyOptions } from "@campus/shared/topology";

// The shared types this module's signatures use, so that its documentation stands on its own.
export type { Logger, MessageProperties, QueueMessage, TopologyOptions };

/** A message read off a queue with {@linkcode QueueAdmin.take}: a copy, already settled. */
export type TakenMessage = QueueMessage;

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
  #connection: QueueConnection | undefined;
  #connecting: Promise<QueueConnection> | undefined;
  #publisher: QueuePublisher | undefined;
  #lastError = "";
  #connector: QueueConnector;

  /** Connects nothing yet: the first operation does. */
  constructor(options: QueueAdminOptions) {
    const { url, topology, name, log } = options;
    this.#connector = new QueueConnector({
      url,
      topology,
      name,
      onError: (err) => log?.warn("queue admin connection error", { error: errorText(err) }),
    });
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
    return await this.#withChannel(async (channel) => {
      const taken: TakenMessage[] = [];
      while (taken.length < max) {
        const msg = await channel.get(queue);
        if (msg === undefined) break;
        const { body, routingKey, properties } = msg;
        taken.push({ body, routingKey, properties });
        if (remove) msg.ack();
      }
      return taken;
    });
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
    return await this.#withChannel(async (channel) => {
      let moved = 0;
      while (moved < max) {
        const msg = await channel.get(queue);
        if (msg === undefined) break;
        const { body, routingKey, properties } = msg;
        const to = destination({ body, routingKey, properties });
        await (await this.#usablePublisher()).publish(
          to.exchange,
          to.routingKey,
          body,
          to.properties,
        );
        msg.ack();
        moved++;
      }
      return moved;
    });
  }

  /** Number of ready messages in `queue` (a passive declare). */
  async queueDepth(queue: string): Promise<number> {
    return await this.#withChannel((channel) => channel.depth(queue));
  }

  /** Publishes raw content, persistent, mandatory and confirmed, as an operator's script would. */
  async publish(
    exchange: string,
    routingKey: string,
    content: Uint8Array,
    properties: MessageProperties = {},
  ): Promise<void> {
    await (await this.#usablePublisher()).publish(exchange, routingKey, content, properties);
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
    if (connection) await connection.close();
  }

  /** Runs `use` on a channel of its own, closed after: what it read and did not ack goes back. */
  async #withChannel<T>(use: (channel: QueueChannel) => Promise<T>): Promise<T> {
    const channel = await (await this.#open()).openChannel();
    try {
      return await use(channel);
    } finally {
      await channel.close();
    }
  }

  async #usablePublisher(): Promise<QueuePublisher> {
    if (!this.#publisher?.usable) this.#publisher = await (await this.#open()).openPublisher();
    return this.#publisher;
  }

  #open(): Promise<QueueConnection> {
    if (this.#connection) return Promise.resolve(this.#connection);
    return this.#connecting ??= (async () => {
      // Declared first: the connection may be lost before `connect` returns.
      let connection: QueueConnection | undefined;
      try {
        connection = await this.#connector.connect(() => {
          if (connection === undefined || this.#connection !== connection) return;
          this.#connection = undefined;
          this.#publisher = undefined;
        });
        this.#connection = connection;
        this.#lastError = "";
        return connection;
      } catch (err) {
        this.#lastError = errorText(err);
        throw new BrokerUnavailable(`Cannot reach the broker: ${errorText(err)}`, { cause: err });
      } finally {
        this.#connecting = undefined;
      }
    })();
  }
}
