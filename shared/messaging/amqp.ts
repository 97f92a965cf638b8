/**
 * The self-healing RabbitMQ session of a service: one connection for consuming (a channel per
 * queue) and one for publishing (a confirm channel), as RabbitMQ advises, so that an alarm that
 * blocks publishing never holds back the acks. It reconnects with backoff after every loss,
 * re-declares the whole topology and resumes consuming.
 * @module
 */
// @deno-types="@types/amqplib"
import type { Channel, ChannelModel } from "amqplib";
import { EXCHANGE, type TopologyOptions } from "./topology.ts";
import type { OutgoingEvent } from "./contract.ts";
import { errorText, type Logger } from "../runtime/log.ts";
import { Backoff, type BackoffBounds } from "../runtime/backoff.ts";
import type { ConfirmPublisher } from "./_confirm_publisher.ts";
import { consumeQueue, type ConsumerChannel } from "./_amqp_consuming.ts";
import { eventMessage, openPublisher, type Outgoing, sendAll } from "./_amqp_publishing.ts";
import { readQueueDepths } from "./_queue_depths.ts";
import { beforeDeadline } from "../runtime/deadline.ts";
import { BrokerNodes, closeConnection, declareTopology, openConnection } from "./_connection.ts";
import { redactUrl } from "../runtime/redact.ts";
import { endSpan, startMessageSpan, traceparentOf } from "../runtime/tracing.ts";
import {
  BrokerUnavailable,
  type DeliveryHandler,
  type MessageBus,
  type MessageProperties,
} from "./message_bus.ts";

/** Options of {@linkcode BrokerSession}. */
export interface BrokerOptions {
  /**
   * The broker, or the nodes of a cluster (a list, or comma-separated): the session connects
   * to one that answers and moves to the next when its connection is lost.
   */
  url: string | readonly string[];
  /** How the queues are declared (`QUEUE_TYPE`, `MAX_DELIVERIES`); classic by default. */
  topology?: TopologyOptions;
  /** Where connection losses, reconnects and alarms are logged. */
  log: Logger;
  /** Unacknowledged deliveries per consumed queue. */
  prefetch: number;
  /**
   * Stem of the connection names the broker shows (`rabbitmqctl list_connections
   * client_properties`): `<name>-consumer` and `<name>-publisher`.
   */
  name: string;
  /** Backoff bounds for reconnecting and for consuming a queue again. */
  backoff?: BackoffBounds;
  /** Hears of each message the broker confirmed, by routing key (for metrics). */
  onPublished?: (routingKey: string) => void;
}

interface Session {
  consuming: ChannelModel;
  publishing: ChannelModel;
  publisher: ConfirmPublisher | undefined;
  /** A publisher being opened to replace one that broke. */
  reopening: Promise<ConfirmPublisher> | undefined;
  consumers: Map<string, ConsumerChannel>;
  /** Why the broker blocks the publishing connection (a resource alarm), while it does. */
  blocked: string | undefined;
  /** Every subscription consumes: only now may the service call itself ready. */
  ready: boolean;
  /** When it became ready. */
  since: number;
  /** A connection went away; a new session will replace this one. */
  lost: boolean;
}

/**
 * The service's own self-healing session with RabbitMQ (the client side, not the broker).
 * Call {@linkcode BrokerSession.start} once.
 */
export class BrokerSession implements MessageBus {
  #session: Session | undefined;
  #stopping = false;
  #backoff: Backoff;
  #writableListeners: (() => void)[] = [];
  #subscriptions = new Map<string, DeliveryHandler>();
  #consumeBackoff = new Map<string, Backoff>();
  #inFlight = new Set<Promise<void>>();
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #connecting = false;
  #redeclaring: Promise<void> | undefined;
  #lastError = "";
  #nodes: BrokerNodes;

  /** Connects nothing yet: {@linkcode BrokerSession.start} does. */
  constructor(private readonly options: BrokerOptions) {
    this.#backoff = new Backoff(options.backoff ?? { initialMs: 100, maxMs: 5_000 });
    this.#nodes = new BrokerNodes(options.url);
  }

  get connected(): boolean {
    return this.#session?.ready === true;
  }

  /** Why the last connection attempt or connection failed, for `/ready`. */
  get lastError(): string {
    return this.#lastError;
  }

  /** Why the broker blocks publishing ("low on memory"), while connected and blocked. */
  get blocked(): string | undefined {
    return this.#session?.ready ? this.#session.blocked : undefined;
  }

  /** Name of the publishing connection as the broker lists it. */
  get publisherName(): string {
    return `${this.options.name}-publisher`;
  }

  /** When the current connection became ready (ms since the epoch); undefined while down. */
  get connectedSince(): number | undefined {
    return this.#session?.ready ? this.#session.since : undefined;
  }

  /** Starts connecting in the background; resolves after the first attempt either way. */
  start(): Promise<void> {
    return this.#connect().catch((err) => this.#attemptFailed(err));
  }

  onWritable(listener: () => void): void {
    this.#writableListeners.push(listener);
  }

  /** Consumes `queue` with `handler`, now if connected and after every reconnect. */
  async subscribe(queue: string, handler: DeliveryHandler): Promise<void> {
    this.#subscriptions.set(queue, handler);
    // A session still being set up picks the new subscription up itself.
    const session = this.#session;
    if (session?.ready) await this.#consume(session, queue, handler);
  }

  /**
   * Publishes events; with tracing on, each in a `publish` span that continues the trace of the
   * event's cause and whose context travels on in the `traceparent` header.
   */
  async publishEvents(events: readonly OutgoingEvent[]): Promise<void> {
    const timestamp = Math.floor(Date.now() / 1000);
    const spans = events.map((event) =>
      startMessageSpan({
        operation: "publish",
        destination: EXCHANGE,
        routingKey: event.routingKey,
        messageId: event.messageId,
        orderId: event.correlationId,
        parent: event.traceparent,
      })
    );
    const messages = events.map((event, i) =>
      eventMessage(event, traceparentOf(spans[i]), timestamp)
    );
    try {
      await this.#publishAll(messages);
    } catch (err) {
      for (const span of spans) endSpan(span, err);
      throw err;
    }
    for (const span of spans) endSpan(span);
  }

  sendToQueue(queue: string, content: Uint8Array, properties: MessageProperties): Promise<void> {
    return this.publish("", queue, content, properties);
  }

  /**
   * Publishes raw content, persistent, mandatory and confirmed: the consumer's retry and
   * dead-letter copies (through {@linkcode BrokerSession.sendToQueue}), and the benchmark.
   */
  publish(
    exchange: string,
    routingKey: string,
    content: Uint8Array,
    properties: MessageProperties = {},
  ): Promise<void> {
    return this.#publishAll([{ exchange, routingKey, content, properties }]);
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
      const cancels = [...session.consumers.values()].map((c) =>
        c.channel.cancel(c.tag).then(() => {}, () => {})
      );
      await waitAll(new Set(cancels), timeoutMs);
    }
    await waitAll(this.#inFlight, timeoutMs);
  }

  /**
   * Ready messages in each of `queues`, read with passive declares on a channel of their own
   * (for metrics: a handful of round trips). Queues it could not read are left out: all of them
   * while disconnected, or when the broker does not answer within `timeoutMs`.
   */
  queueDepths(queues: readonly string[], timeoutMs = 2_000): Promise<Map<string, number>> {
    const session = this.#session;
    if (!session?.ready) return Promise.resolve(new Map());
    return readQueueDepths(session.consuming, queues, timeoutMs);
  }

  /** Closes both connections for good; unacknowledged deliveries go back to their queues. */
  async close(): Promise<void> {
    this.#stopping = true;
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    const session = this.#session;
    this.#session = undefined;
    if (session) {
      await Promise.all([closeConnection(session.publishing), closeConnection(session.consuming)]);
    }
  }

  /**
   * Publishes every message and waits for every confirm. Messages the broker returned (a queue
   * or binding was deleted under us) are sent once more after the topology was declared again;
   * a second return fails the publish.
   */
  async #publishAll(messages: Outgoing[]): Promise<void> {
    await this.#confirmAll(messages);
    const { onPublished } = this.options;
    if (onPublished) { for (const m of messages) onPublished(m.routingKey); }
  }

  async #confirmAll(messages: Outgoing[]): Promise<void> {
    const returned = await sendAll(await this.#publisher(), messages);
    if (returned.length === 0) return;
    this.options.log.warn("a publish matched no queue; declaring the topology again", {
      routing_key: returned[0].message.routingKey,
      returned: returned.length,
    });
    await this.#redeclare();
    const again = await sendAll(await this.#publisher(), returned.map((r) => r.message));
    if (again.length > 0) throw again[0].error;
  }

  async #publisher(): Promise<ConfirmPublisher> {
    const session = this.#session;
    if (!session) throw new BrokerUnavailable(this.#lastError || undefined);
    if (session.blocked !== undefined) {
      // The broker reads nothing from a blocked connection: a publish would wait for as long
      // as the alarm lasts, holding whatever waits on it.
      throw new BrokerUnavailable(`The broker blocks publishing: ${session.blocked}`);
    }
    if (session.publisher?.usable) return session.publisher;
    return await (session.reopening ??= this.#reopenPublisher(session));
  }

  async #reopenPublisher(session: Session): Promise<ConfirmPublisher> {
    try {
      const publisher = await openPublisher(session.publishing, this.options.log);
      if (session.lost) {
        await publisher.close();
        throw new BrokerUnavailable(this.#lastError || "connection lost");
      }
      session.publisher = publisher;
      return publisher;
    } catch (err) {
      if (err instanceof BrokerUnavailable) throw err;
      throw new BrokerUnavailable(`Cannot open a publish channel: ${errorText(err)}`, {
        cause: err,
      });
    } finally {
      session.reopening = undefined;
    }
  }

  /** Declares the topology again, once for however many publishes came back together. */
  #redeclare(): Promise<void> {
    return this.#redeclaring ??= (async () => {
      try {
        const session = this.#session;
        if (!session) throw new BrokerUnavailable(this.#lastError || undefined);
        await declareTopology(session.consuming, this.options.topology);
      } finally {
        this.#redeclaring = undefined;
      }
    })();
  }

  async #connect(): Promise<void> {
    // One attempt at a time: a second session would leak, with consumers of its own.
    if (this.#stopping || this.#session || this.#connecting) return;
    this.#connecting = true;
    const { log, name } = this.options;
    const opened: ChannelModel[] = [];
    let session: Session | undefined;
    try {
      const onError = (what: string) => (err: Error) =>
        log.warn(`broker ${what} connection error`, { error: errorText(err) });
      const consuming = await this.#nodes.connect(`${name}-consumer`, onError("consuming"));
      opened.push(consuming);
      const url = this.#nodes.current;
      const publishing = await openConnection(url, this.publisherName, onError("publishing"));
      opened.push(publishing);
      if (this.#stopping) throw new BrokerUnavailable("closing");
      const current: Session = {
        consuming,
        publishing,
        publisher: undefined,
        reopening: undefined,
        consumers: new Map(),
        blocked: undefined,
        ready: false,
        since: 0,
        lost: false,
      };
      session = current;
      consuming.on(
        "close",
        (err?: Error) => this.#lost(current, closedBecause("consuming connection", err)),
      );
      publishing.on(
        "close",
        (err?: Error) => this.#lost(current, closedBecause("publishing connection", err)),
      );
      publishing.on("blocked", (reason: string) => this.#blocked(current, reason));
      publishing.on("unblocked", () => this.#unblocked(current));
      await declareTopology(consuming, this.options.topology);
      current.publisher = await openPublisher(current.publishing, this.options.log);
      // Handlers may retry or dead-letter as soon as the first consumer runs, so publishing
      // works from here on; `connected` waits until every subscription consumes.
      this.#session = current;
      for (const [queue, handler] of this.#subscriptions) {
        await this.#consume(current, queue, handler);
      }
      if (current.lost) throw new BrokerUnavailable(this.#lastError || "connection lost");
      if (this.#stopping) throw new BrokerUnavailable("closing");
      current.ready = true;
      current.since = Date.now();
      this.#backoff.reset();
      this.#lastError = "";
      log.info("broker connected", { url: redactUrl(url) });
      this.#notifyWritable();
    } catch (err) {
      if (session) {
        // Keeps the first reason when the loss was already reported.
        this.#lost(session, errorText(err));
      } else {
        this.#lastError = errorText(err);
        for (const connection of opened) await closeConnection(connection);
        // Half a session on this node (the second connection failed): try the next.
        if (opened.length > 0) this.#nodes.moveOn();
      }
      this.#scheduleReconnect();
    } finally {
      this.#connecting = false;
    }
  }

  async #consume(session: Session, queue: string, handler: DeliveryHandler): Promise<void> {
    const { log, prefetch } = this.options;
    const consumer = await consumeQueue(session.consuming, queue, handler, {
      log,
      prefetch,
      closed: (channel) => this.#consumerClosed(session, queue, channel),
      // The broker cancelled the consumer (queue deleted or moved): start over, which
      // re-declares the queue and consumes it again.
      cancelled: () => this.#lost(session, `consumer of ${queue} cancelled by the broker`),
      handled: () => this.#consumeBackoff.get(queue)?.reset(),
      started: (work) => {
        this.#inFlight.add(work);
        work.finally(() => this.#inFlight.delete(work));
      },
    });
    session.consumers.set(queue, consumer);
  }

  /** A consumer channel closed while its connection lives on: consume its queue again. */
  #consumerClosed(session: Session, queue: string, channel: Channel): void {
    if (session.consumers.get(queue)?.channel === channel) session.consumers.delete(queue);
    if (session.lost || this.#stopping || this.#session !== session) return;
    const handler = this.#subscriptions.get(queue);
    if (!handler) return; // shutting down: stopConsuming dropped it
    let backoff = this.#consumeBackoff.get(queue);
    if (!backoff) {
      backoff = new Backoff(this.options.backoff ?? { initialMs: 100, maxMs: 5_000 });
      this.#consumeBackoff.set(queue, backoff);
    }
    // A message that throws every time must not spin: each round waits a little longer.
    setTimeout(() => {
      if (session.lost || this.#session !== session || session.consumers.has(queue)) return;
      if (!this.#subscriptions.has(queue)) return;
      this.#consume(session, queue, handler).catch((err) =>
        this.#lost(session, `cannot consume ${queue} again: ${errorText(err)}`)
      );
    }, backoff.next());
  }

  #blocked(session: Session, reason: string): void {
    session.blocked = reason || "blocked";
    this.options.log.warn("the broker blocks publishing", {
      connection: this.publisherName,
      reason: session.blocked,
    });
    // Nothing published on a blocked connection is read until the alarm clears: fail what
    // waits, so nobody waits on it (it is sent again afterwards, and consumers are idempotent).
    session.publisher?.failAll(new BrokerUnavailable(`The broker blocks publishing: ${reason}`));
  }

  #unblocked(session: Session): void {
    session.blocked = undefined;
    this.options.log.info("the broker unblocked publishing", { connection: this.publisherName });
    if (this.#session === session) this.#notifyWritable();
  }

  #notifyWritable(): void {
    for (const listener of this.#writableListeners) {
      try {
        listener();
      } catch (err) {
        this.options.log.error("writable listener failed", { error: errorText(err) });
      }
    }
  }

  /** Drops a session whose connection went away, once, and reconnects. */
  #lost(session: Session, why: string): void {
    if (session.lost) return;
    session.lost = true;
    // The node may be going down: the next session starts with the next node of the cluster.
    this.#nodes.moveOn();
    // Publishes waiting for a confirm will never get one: fail them so callers retry.
    session.publisher?.failAll(new BrokerUnavailable(why));
    closeConnection(session.publishing);
    closeConnection(session.consuming);
    if (this.#session === session) this.#session = undefined;
    if (this.#stopping) return;
    this.#lastError = why;
    this.options.log.warn("broker connection lost", { why });
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    if (this.#stopping || this.#reconnectTimer !== undefined) return;
    const delay = this.#backoff.next();
    this.options.log.debug("reconnecting", { in_ms: Math.round(delay), error: this.#lastError });
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      this.#connect().catch((err) => this.#attemptFailed(err));
    }, delay);
  }

  /** An attempt that failed outside its own handling: reported, and tried again later. */
  #attemptFailed(err: unknown): void {
    this.#lastError = errorText(err);
    this.options.log.error("broker connection attempt failed", { error: this.#lastError });
    this.#scheduleReconnect();
  }
}

function closedBecause(what: string, err?: Error): string {
  return err ? `${what} closed: ${errorText(err)}` : `${what} closed`;
}

async function waitAll(work: Set<Promise<void>>, timeoutMs: number): Promise<void> {
  await beforeDeadline(Promise.all([...work]), timeoutMs);
}
