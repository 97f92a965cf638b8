/**
 * The AMQP channel helper, and the only module that knows amqplib. One long-lived connection
 * per service with a confirm channel for publishing and one channel per consumed queue. It
 * reconnects with capped exponential backoff and jitter, re-declares the whole topology and
 * resumes consuming after every loss.
 * @module
 */
// @deno-types="@types/amqplib"
import amqp from "amqplib";
import type {
  Channel,
  ChannelModel,
  ConfirmChannel,
  ConsumeMessage,
  GetMessage,
  Options,
} from "amqplib";
import { Buffer } from "node:buffer";
import { declarationsOf, EXCHANGE, WORK_QUEUES } from "./topology.ts";
import { type OutgoingEvent, SCHEMA_VERSION } from "./events.ts";
import { errorText, type Logger } from "./log.ts";
import { AckWindow, type Settlement } from "./_ack_window.ts";

/** One delivered message, with the means to settle it on the channel it came from. */
export interface Delivery {
  queue: string;
  body: Uint8Array;
  routingKey: string;
  messageId?: string;
  type?: string;
  correlationId?: string;
  headers: Record<string, unknown>;
  /** The broker delivered it before without an ack (a crash or a lost connection). */
  redelivered: boolean;
  ack(): void;
  /** Rejects without requeue: the queue's dead-letter exchange takes it. */
  reject(): void;
}

/**
 * Handles the deliveries that arrived together (at most the prefetch), in delivery order; it
 * must settle each (ack or reject) itself.
 */
export type DeliveryHandler = (deliveries: Delivery[]) => Promise<void>;

/** Publishing and consuming as the services see it; tests may provide an in-memory one. */
export interface MessageBus {
  /** True while a connection with declared topology is open. */
  readonly connected: boolean;
  /** Publishes events in order; resolves once the broker confirmed every one. */
  publishEvents(events: readonly OutgoingEvent[]): Promise<void>;
  /** Publishes raw content to a queue (default exchange), confirmed. */
  sendToQueue(queue: string, content: Uint8Array, properties: MessageProperties): Promise<void>;
  /** Calls `listener` after every (re)connect, once topology is declared. */
  onConnected(listener: () => void): void;
}

/** The AMQP properties this project sets or reads. */
export interface MessageProperties {
  messageId?: string;
  type?: string;
  correlationId?: string;
  timestamp?: number;
  headers?: Record<string, unknown>;
  expiration?: string;
  contentType?: string;
}

/** A message read off a queue with {@linkcode Broker.take}. */
export interface TakenMessage {
  body: Uint8Array;
  routingKey: string;
  properties: MessageProperties & { headers: Record<string, unknown> };
}

/** Options of {@linkcode Broker}. */
export interface BrokerOptions {
  url: string;
  log: Logger;
  /** Unacknowledged deliveries per consumed queue. */
  prefetch: number;
  /** Connection name shown by the broker (`rabbitmqctl list_connections client_properties`). */
  name: string;
  /** Backoff bounds for reconnecting. */
  backoff?: { initialMs: number; maxMs: number };
}

/** Thrown when publishing while no connection is open. */
export class BrokerUnavailable extends Error {
  constructor(message = "Broker is not connected", options?: ErrorOptions) {
    super(message, options);
    this.name = "BrokerUnavailable";
  }
}

const CONNECT_TIMEOUT_MS = 10_000;

interface Session {
  connection: ChannelModel;
  publisher: ConfirmChannel;
  consumers: { channel: Channel; tag: string }[];
  /** Every subscription consumes: only now may the service call itself ready. */
  ready: boolean;
  /** The connection or one of its channels went away; a new session will replace this one. */
  lost: boolean;
}

/** A self-healing connection to RabbitMQ. Call {@linkcode Broker.start} once. */
export class Broker implements MessageBus {
  #session: Session | undefined;
  #stopping = false;
  #attempt = 0;
  #connectedListeners: (() => void)[] = [];
  #subscriptions = new Map<string, DeliveryHandler>();
  #inFlight = new Set<Promise<void>>();
  #pendingConfirms = new Set<(err: Error) => void>();
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #connecting = false;
  #lastError = "";

  constructor(private readonly options: BrokerOptions) {}

  get connected(): boolean {
    return this.#session?.ready === true;
  }

  /** Why the last connection attempt or connection failed, for `/ready`. */
  get lastError(): string {
    return this.#lastError;
  }

  /** Starts connecting in the background; resolves after the first attempt either way. */
  start(): Promise<void> {
    return this.#connect();
  }

  onConnected(listener: () => void): void {
    this.#connectedListeners.push(listener);
  }

  /** Consumes `queue` with `handler`, now if connected and after every reconnect. */
  async subscribe(queue: string, handler: DeliveryHandler): Promise<void> {
    this.#subscriptions.set(queue, handler);
    // A session still being set up picks the new subscription up itself.
    const session = this.#session;
    if (session?.ready) await this.#consume(session, queue, handler);
  }

  async publishEvents(events: readonly OutgoingEvent[]): Promise<void> {
    const channel = this.#publisher();
    const now = Math.floor(Date.now() / 1000);
    await Promise.all(
      events.map((event) =>
        this.#publish(
          channel,
          EXCHANGE,
          event.routingKey,
          Buffer.from(JSON.stringify(event.body)),
          {
            messageId: event.messageId,
            type: event.type,
            correlationId: event.correlationId,
            timestamp: now,
            headers: { "schema-version": SCHEMA_VERSION },
          },
        )
      ),
    );
  }

  sendToQueue(queue: string, content: Uint8Array, properties: MessageProperties): Promise<void> {
    return this.publish("", queue, content, properties);
  }

  /** Publishes raw content, persistent and confirmed: for tools and tests that act by hand. */
  publish(
    exchange: string,
    routingKey: string,
    content: Uint8Array,
    properties: MessageProperties = {},
  ): Promise<void> {
    return this.#publish(this.#publisher(), exchange, routingKey, Buffer.from(content), properties);
  }

  /**
   * Takes up to `max` messages off `queue` (basic.get). With `remove` false they are put back
   * after reading, so a queue can be listed without emptying it.
   */
  async take(queue: string, max: number, { remove = true } = {}): Promise<TakenMessage[]> {
    const session = this.#session;
    if (!session) throw new BrokerUnavailable();
    const channel = await openChannel(session);
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
   * after its copy was confirmed: a crash in between duplicates a message, never loses one.
   * Returns how many moved.
   */
  async moveMessages(
    queue: string,
    max: number,
    destination: (message: TakenMessage) => {
      exchange: string;
      routingKey: string;
      properties: MessageProperties;
    },
  ): Promise<number> {
    const session = this.#session;
    if (!session) throw new BrokerUnavailable();
    const channel = await session.connection.createConfirmChannel();
    channel.on("error", () => {}); // surfaces as a failed get or publish below
    let moved = 0;
    try {
      while (moved < max) {
        const msg = await channel.get(queue, { noAck: false });
        if (msg === false) break;
        const to = destination(toTaken(msg));
        await this.#publish(channel, to.exchange, to.routingKey, msg.content, to.properties);
        channel.ack(msg);
        moved++;
      }
    } finally {
      await channel.close().catch(() => {});
    }
    return moved;
  }

  /** Number of ready messages in `queue` (a passive declare), for readiness and tests. */
  async queueDepth(queue: string): Promise<number> {
    const session = this.#session;
    if (!session) throw new BrokerUnavailable();
    const channel = await openChannel(session);
    try {
      return (await channel.checkQueue(queue)).messageCount;
    } finally {
      await channel.close().catch(() => {});
    }
  }

  /**
   * Stops taking deliveries and waits (at most `timeoutMs`) for the in-flight handlers to
   * settle theirs. Publishing keeps working, so handlers and the outbox can finish.
   */
  async stopConsuming(timeoutMs = 10_000): Promise<void> {
    this.#subscriptions.clear();
    const session = this.#session;
    if (session) {
      // Cancelling (not closing) stops new deliveries and lets in-flight ones be acknowledged.
      // A broker that stopped answering must not hold the shutdown past its bound.
      const cancels = session.consumers.map((c) =>
        c.channel.cancel(c.tag).then(() => {}, () => {})
      );
      await waitAll(new Set(cancels), timeoutMs);
    }
    await waitAll(this.#inFlight, timeoutMs);
  }

  /** Closes the connection for good; unacknowledged deliveries go back to their queues. */
  async close(): Promise<void> {
    this.#stopping = true;
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    const session = this.#session;
    this.#session = undefined;
    if (session) await session.connection.close().catch(() => {});
  }

  #publisher(): ConfirmChannel {
    const session = this.#session;
    if (!session) throw new BrokerUnavailable();
    return session.publisher;
  }

  #publish(
    channel: ConfirmChannel,
    exchange: string,
    routingKey: string,
    content: Buffer,
    properties: MessageProperties,
  ): Promise<void> {
    return new Promise((resolve, reject) => {
      const fail = (err: Error) => {
        this.#pendingConfirms.delete(fail);
        reject(err);
      };
      this.#pendingConfirms.add(fail);
      const options: Options.Publish = {
        ...properties,
        persistent: true,
        contentType: properties.contentType ?? "application/json",
      };
      try {
        channel.publish(exchange, routingKey, content, options, (err) => {
          this.#pendingConfirms.delete(fail);
          if (err) reject(new BrokerUnavailable(`Broker refused ${routingKey}: ${err}`));
          else resolve();
        });
      } catch (err) {
        fail(new BrokerUnavailable(`Cannot publish ${routingKey}: ${errorText(err)}`));
      }
    });
  }

  async #connect(): Promise<void> {
    // One attempt at a time: a second connection would leak, with consumers of its own.
    if (this.#stopping || this.#session || this.#connecting) return;
    this.#connecting = true;
    const { url, log, name } = this.options;
    let connection: ChannelModel | undefined;
    let session: Session | undefined;
    try {
      // The timeout bounds the TCP and AMQP handshake: a hung attempt would block every retry.
      connection = await amqp.connect(withHeartbeat(url), {
        clientProperties: { connection_name: name },
        timeout: CONNECT_TIMEOUT_MS,
        // Without it Nagle holds small frames (a lone ack or publish) back for up to 40 ms.
        noDelay: true,
      });
      if (this.#stopping) throw new BrokerUnavailable("closing");
      // Listen at once: an 'error' event nobody listens to would crash the process.
      connection.on(
        "error",
        (err) => log.warn("broker connection error", { error: errorText(err) }),
      );
      const publisher = await connection.createConfirmChannel();
      const current: Session = { connection, publisher, consumers: [], ready: false, lost: false };
      session = current;
      connection.on(
        "close",
        (err?: Error) => this.#lost(current, closedBecause("connection", err)),
      );
      publisher.on("error", (err) => log.warn("publish channel error", { error: errorText(err) }));
      publisher.on("close", () => this.#lost(current, "publish channel closed"));
      await declareTopology(publisher);
      // Handlers may retry or dead-letter as soon as the first consumer runs, so publishing
      // works from here on; `connected` waits until every subscription consumes.
      this.#session = current;
      for (const [queue, handler] of this.#subscriptions) {
        await this.#consume(current, queue, handler);
      }
      if (current.lost) throw new BrokerUnavailable(this.#lastError || "connection lost");
      if (this.#stopping) throw new BrokerUnavailable("closing");
      current.ready = true;
      this.#attempt = 0;
      this.#lastError = "";
      log.info("broker connected", { url: redact(url) });
      for (const listener of this.#connectedListeners) listener();
    } catch (err) {
      if (session) {
        // Keeps the first reason when the loss was already reported.
        this.#lost(session, errorText(err));
      } else {
        this.#lastError = errorText(err);
        await connection?.close().catch(() => {});
      }
      this.#scheduleReconnect();
    } finally {
      this.#connecting = false;
    }
  }

  async #consume(session: Session, queue: string, handler: DeliveryHandler): Promise<void> {
    const channel = await session.connection.createChannel();
    channel.on(
      "error",
      (err) => this.options.log.warn("consumer channel error", { queue, error: errorText(err) }),
    );
    channel.on("close", () => this.#lost(session, `consumer channel of ${queue} closed`));
    await channel.prefetch(this.options.prefetch);
    const acks = new AckWindow<ConsumeMessage>((msg) => settle(() => channel.ack(msg, true)));
    let batch: Delivery[] = [];
    // amqplib parses a whole socket read in one go: what arrived together is handled together.
    const handleBatch = () => {
      const deliveries = batch;
      batch = [];
      const work = handler(deliveries).catch((err) =>
        this.options.log.error("delivery handler failed", { queue, error: errorText(err) })
      );
      this.#inFlight.add(work);
      work.finally(() => this.#inFlight.delete(work));
    };
    const { consumerTag } = await channel.consume(queue, (msg) => {
      if (msg === null) {
        // The broker cancelled the consumer (queue deleted or moved): start over, which
        // re-declares the queue and consumes it again.
        this.#lost(session, `consumer of ${queue} cancelled by the broker`);
        return;
      }
      if (batch.length === 0) queueMicrotask(handleBatch);
      batch.push(toDelivery(queue, msg, channel, acks.track(msg)));
    });
    session.consumers.push({ channel, tag: consumerTag });
  }

  /** Drops a session whose connection or channel went away, once, and reconnects. */
  #lost(session: Session, why: string): void {
    if (session.lost) return;
    session.lost = true;
    session.connection.close().catch(() => {});
    // Publishes waiting for a confirm will never get one: fail them so callers retry.
    for (const fail of [...this.#pendingConfirms]) fail(new BrokerUnavailable(why));
    if (this.#session === session) this.#session = undefined;
    if (this.#stopping) return;
    this.#lastError = why;
    this.options.log.warn("broker connection lost", { why });
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    if (this.#stopping || this.#reconnectTimer !== undefined) return;
    const { initialMs, maxMs } = this.options.backoff ?? { initialMs: 100, maxMs: 5_000 };
    const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(this.#attempt++, 30));
    // Jitter spreads the reconnects of many services after a broker restart.
    const delay = ceiling / 2 + Math.random() * ceiling / 2;
    this.options.log.debug("reconnecting", { in_ms: Math.round(delay), error: this.#lastError });
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      this.#connect();
    }, delay);
  }
}

async function declareTopology(channel: Channel): Promise<void> {
  await channel.assertExchange(EXCHANGE, "topic", { durable: true });
  for (const queue of WORK_QUEUES) {
    for (const declaration of declarationsOf(queue)) {
      await channel.assertQueue(declaration.name, {
        durable: true,
        arguments: declaration.arguments,
      });
    }
    for (const key of queue.bindings) await channel.bindQueue(queue.name, EXCHANGE, key);
  }
}

function toDelivery(
  queue: string,
  msg: ConsumeMessage,
  channel: Channel,
  settlement: Settlement,
): Delivery {
  const p = msg.properties;
  return {
    queue,
    body: msg.content,
    routingKey: msg.fields.routingKey,
    messageId: p.messageId ?? undefined,
    type: p.type ?? undefined,
    correlationId: p.correlationId ?? undefined,
    headers: p.headers ?? {},
    redelivered: msg.fields.redelivered,
    ack: settlement.ack,
    reject: () => {
      settle(() => channel.nack(msg, false, false));
      settlement.rejected();
    },
  };
}

/**
 * Asks for 10 s heartbeats unless the URL sets its own: with the broker's 60 s default a peer
 * that vanished without closing the socket would go unnoticed for two minutes.
 */
function withHeartbeat(url: string): string {
  if (/[?&]heartbeat=/.test(url)) return url;
  return url + (url.includes("?") ? "&" : "?") + "heartbeat=10";
}

/** A short-lived channel for reads; a server-side close of it must not crash the process. */
async function openChannel(session: Session): Promise<Channel> {
  const channel = await session.connection.createChannel();
  channel.on("error", () => {});
  return channel;
}

function closedBecause(what: string, err?: Error): string {
  return err ? `${what} closed: ${errorText(err)}` : `${what} closed`;
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

function settle(action: () => void): void {
  try {
    action();
  } catch {
    // channel closed: the delivery is redelivered after reconnect, and handlers are idempotent
  }
}

async function waitAll(work: Set<Promise<void>>, timeoutMs: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<void>((resolve) => timer = setTimeout(resolve, timeoutMs));
  await Promise.race([Promise.all([...work]), timeout]);
  clearTimeout(timer);
}

function redact(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]+@/, "//$1:***@");
}
