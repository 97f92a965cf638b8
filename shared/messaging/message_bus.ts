/**
 * The message bus as services and the consumer policy see it: publishing events and copies, and
 * deliveries to settle. No broker client here: `amqp.ts` implements it over RabbitMQ, and unit
 * tests may use an in-memory one.
 * @module
 */
import type { OutgoingEvent } from "./contract.ts";

/** One delivered message, with the means to settle it on the channel it came from. */
export interface Delivery {
  /** The queue it was consumed from. */
  queue: string;
  /** The raw body. */
  body: Uint8Array;
  /** The routing key it was published with. */
  routingKey: string;
  /** The AMQP message id, when the publisher set one. */
  messageId?: string;
  /** The AMQP `type` property: the event type. */
  type?: string;
  /** The AMQP correlation id: the order id. */
  correlationId?: string;
  /** The AMQP headers; empty when there are none. */
  headers: Record<string, unknown>;
  /** The broker delivered it before without an ack (a crash or a lost connection). */
  redelivered: boolean;
  /**
   * False once the channel it came on closed: settling it then does nothing, and the broker
   * delivers it again.
   */
  readonly channelOpen: boolean;
  /** Acknowledges it: the broker forgets it. */
  ack(): void;
  /** Rejects without requeue: the queue's dead-letter exchange takes it. */
  reject(): void;
}

/**
 * Handles the deliveries that arrived together (at most the prefetch), in delivery order; it
 * must settle each (ack or reject) itself. Should it throw, or return with one unsettled, the
 * bus closes their channel so that the broker delivers them again.
 */
export type DeliveryHandler = (deliveries: Delivery[]) => Promise<void>;

/** The AMQP properties this project sets or reads. */
export interface MessageProperties {
  /** Unique id of the message. */
  messageId?: string;
  /** Event type, e.g. `OrderPlaced`. */
  type?: string;
  /** The order id the message is about. */
  correlationId?: string;
  /** Publish time, in seconds since the epoch. */
  timestamp?: number;
  /** Application headers, e.g. `x-retry-count`. */
  headers?: Record<string, unknown>;
  /** Per-message TTL in milliseconds, as a string. */
  expiration?: string;
  /** MIME type of the body, `application/json`. */
  contentType?: string;
}

/** Publishing as the services see it; tests may provide an in-memory bus. */
export interface MessageBus {
  /** True while a connection with declared topology is open. */
  readonly connected: boolean;
  /**
   * Publishes events; resolves once the broker confirmed and routed every one. Rejects with
   * {@linkcode UnroutableMessage} when one matched no queue even after the topology was
   * declared again.
   */
  publishEvents(events: readonly OutgoingEvent[]): Promise<void>;
  /** Publishes raw content to a queue (default exchange), confirmed and routed. */
  sendToQueue(queue: string, content: Uint8Array, properties: MessageProperties): Promise<void>;
  /**
   * Calls `listener` whenever publishing may work again: after every (re)connect, when the
   * broker unblocks the publisher, and after the topology was declared again.
   */
  onWritable(listener: () => void): void;
}

/** Thrown when publishing while no connection is open, or while the broker blocks publishing. */
export class BrokerUnavailable extends Error {
  /** Defaults to saying the broker is not connected. */
  constructor(message = "Broker is not connected", options?: ErrorOptions) {
    super(message, options);
    this.name = "BrokerUnavailable";
  }
}

/**
 * The broker returned a publish because no queue matched it (a queue or binding is missing);
 * the message went nowhere.
 */
export class UnroutableMessage extends Error {
  /** A message naming the routing key that matched nothing. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "UnroutableMessage";
  }
}
