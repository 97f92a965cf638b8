/**
 * Plain access to the broker's queues, for the queue tools and the suites outside this package
 * (`testing/amqp_admin.ts` builds on it): a connection of their own, which declares the topology
 * exactly as the services do, and channels that read, acknowledge, count and publish by hand.
 * Nothing here reconnects; the caller decides when to connect again. Services use the
 * self-healing session in `amqp.ts` instead. amqplib stays behind this folder: these types are
 * its only way out.
 * @module
 */
// @deno-types="@types/amqplib"
import type { Channel, ChannelModel, GetMessage } from "amqplib";
import { ConfirmPublisher } from "./_confirm_publisher.ts";
import { BrokerNodes, closeConnection, declareTopology } from "./_connection.ts";
import type { MessageProperties } from "./message_bus.ts";
import type { TopologyOptions } from "./topology.ts";

/** A message as read off a queue. */
export interface QueueMessage {
  /** The body as it was published. */
  body: Uint8Array;
  /** The routing key it was published with. */
  routingKey: string;
  /** Its AMQP properties; `headers` is always present. */
  properties: MessageProperties & { headers: Record<string, unknown> };
}

/** A message read off a queue and not yet acknowledged: it goes back when its channel closes. */
export interface ReadMessage extends QueueMessage {
  /** Acknowledges it: the broker drops it from the queue. */
  ack(): void;
}

/** Options of {@linkcode QueueConnector}. */
export interface QueueConnectorOptions {
  /** The broker, or the nodes of a cluster (a list, or comma-separated), tried in turn. */
  url: string | readonly string[];
  /**
   * How the queues are declared: the services' own options (`topologyOptions()` in
   * `config.ts`), or the broker refuses the declarations, or on a fresh broker makes a queue of
   * the wrong type before the services declare theirs.
   */
  topology: TopologyOptions;
  /** Connection name shown by the broker. */
  name: string;
  /** Hears connection errors; they also surface as failed operations. */
  onError?: (err: Error) => void;
}

/**
 * Opens plain connections to one broker or cluster. A connection goes to the node that answered
 * last, or else the next that answers; after one was lost, the next connect starts from the
 * following node, as that one may be going down.
 */
export class QueueConnector {
  #nodes: BrokerNodes;

  /** Connects nothing yet. */
  constructor(private readonly options: QueueConnectorOptions) {
    this.#nodes = new BrokerNodes(options.url);
  }

  /**
   * Connects and declares the topology. `onLost` hears the connection close when the caller did
   * not close it. Throws what the broker answered, or why no node answered.
   */
  async connect(onLost: () => void): Promise<QueueConnection> {
    const { name, onError, topology } = this.options;
    const connection = await this.#nodes.connect(name, (err) => onError?.(err));
    let closing = false;
    connection.on("close", () => {
      if (closing) return;
      this.#nodes.moveOn();
      onLost();
    });
    try {
      await declareTopology(connection, topology);
    } catch (err) {
      closing = true;
      await closeConnection(connection);
      throw err;
    }
    return new PlainConnection(connection, () => closing = true);
  }
}

/** One plain connection, topology declared; from {@linkcode QueueConnector.connect}. */
export interface QueueConnection {
  /** Opens a channel for reading, acknowledging and counting. */
  openChannel(): Promise<QueueChannel>;
  /**
   * Opens a confirm channel: each publish is persistent and mandatory, and succeeds once the
   * broker confirmed it and a queue took it (`UnroutableMessage` when none did).
   */
  openPublisher(): Promise<QueuePublisher>;
  /** Closes the connection; unacknowledged messages go back to their queues. Never rejects. */
  close(): Promise<void>;
}

/** Publishes over one confirm channel; from {@linkcode QueueConnection.openPublisher}. */
export interface QueuePublisher {
  /** False once the channel closed or broke: open another. */
  readonly usable: boolean;
  /** Publishes one message; resolves once the broker confirmed it and routed it to a queue. */
  publish(
    exchange: string,
    routingKey: string,
    content: Uint8Array,
    properties: MessageProperties,
  ): Promise<void>;
  /** Closes the channel; publishes still waiting fail. */
  close(): Promise<void>;
}

/** A channel for reading queues; from {@linkcode QueueConnection.openChannel}. */
export interface QueueChannel {
  /** The next ready message of `queue` (basic.get), unacknowledged; undefined when none is. */
  get(queue: string): Promise<ReadMessage | undefined>;
  /** Number of ready messages in `queue` (a passive declare, which never creates a queue). */
  depth(queue: string): Promise<number>;
  /** Closes the channel: every message read and not acknowledged goes back to its queue. */
  close(): Promise<void>;
}

// The implementations keep amqplib's types out of the signatures above.

class PlainConnection implements QueueConnection {
  constructor(private readonly connection: ChannelModel, private readonly onClose: () => void) {}

  async openChannel(): Promise<QueueChannel> {
    const channel = await this.connection.createChannel();
    channel.on("error", () => {}); // surfaces as the failed operation
    return new ReadingChannel(channel);
  }

  async openPublisher(): Promise<QueuePublisher> {
    const channel = await this.connection.createConfirmChannel();
    channel.on("error", () => {}); // surfaces as a failed publish
    return new ConfirmPublisher(channel);
  }

  async close(): Promise<void> {
    this.onClose();
    await closeConnection(this.connection);
  }
}

class ReadingChannel implements QueueChannel {
  constructor(private readonly channel: Channel) {}

  async get(queue: string): Promise<ReadMessage | undefined> {
    const msg = await this.channel.get(queue, { noAck: false });
    return msg === false ? undefined : this.#read(msg);
  }

  async depth(queue: string): Promise<number> {
    return (await this.channel.checkQueue(queue)).messageCount;
  }

  async close(): Promise<void> {
    await this.channel.close().catch(() => {});
  }

  #read(msg: GetMessage): ReadMessage {
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
      ack: () => this.channel.ack(msg),
    };
  }
}
