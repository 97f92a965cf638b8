/**
 * A replica's own live feed of events: a connection of its own with a server-named, exclusive,
 * auto-delete queue bound to the feed's routing keys, consumed without acks. It reconnects with
 * backoff; events sent while it was away are gone, so it says when it is back and listeners
 * catch up from their store.
 * @module
 */
// @deno-types="@types/amqplib"
import type { ChannelModel } from "amqplib";
import { Backoff } from "../runtime/backoff.ts";
import { BrokerNodes, closeConnection } from "./_connection.ts";
import { errorText, type Logger } from "../runtime/log.ts";
import { type EventFeed, EXCHANGE } from "./topology.ts";
import { parseJson } from "./contract.ts";

/** One event heard on the feed: its routing key and its body, parsed. */
export interface FeedEvent {
  /** The routing key it was published with, e.g. `inventory.reserved`. */
  routingKey: string;
  /** The JSON body, or undefined when it was not JSON. */
  body: unknown;
}

/** Options of {@linkcode FeedListener}. */
export interface FeedListenerOptions {
  /** The broker, or the nodes of a cluster (a list, or comma-separated), tried in turn. */
  url: string | readonly string[];
  /** Connection name shown by the broker. */
  name: string;
  /** Which events to hear, from the topology's feed table. */
  feed: EventFeed;
  /** Where connection trouble is reported. */
  log: Logger;
  /** Hears every event, in order. */
  onEvent: (event: FeedEvent) => void;
  /** Called after every (re)connect, once the queue is bound: events may have been missed. */
  onReady?: () => void;
}

/** Listens to an {@linkcode EventFeed}. Call {@linkcode FeedListener.start} once. */
export class FeedListener {
  #connection: ChannelModel | undefined;
  #backoff = new Backoff({ initialMs: 100, maxMs: 5_000 });
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;
  #connecting: Promise<void> | undefined;
  #nodes: BrokerNodes;

  /** Listens to nothing yet: {@linkcode FeedListener.start} does. */
  constructor(private readonly options: FeedListenerOptions) {
    this.#nodes = new BrokerNodes(options.url);
  }

  /** True while the queue is bound and consumed. */
  get listening(): boolean {
    return this.#connection !== undefined;
  }

  /** Starts connecting in the background. */
  start(): void {
    this.#connecting ??= this.#connect().catch((err) => {
      this.options.log.error("feed connection attempt failed", { error: errorText(err) });
      this.#retry();
    });
  }

  /** Stops listening for good; the broker deletes the queue with the connection. */
  async close(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#connecting;
    const connection = this.#connection;
    this.#connection = undefined;
    if (connection) await closeConnection(connection);
  }

  async #connect(): Promise<void> {
    const { name, feed, log, onEvent, onReady } = this.options;
    let connection: ChannelModel | undefined;
    try {
      connection = await this.#nodes.connect(
        name,
        (err) => log.warn("feed connection error", { error: errorText(err) }),
      );
      const opened = connection;
      connection.on("close", () => this.#lost(opened));
      const channel = await connection.createChannel();
      channel.on("error", (err) => log.warn("feed channel error", { error: errorText(err) }));
      // A channel that closes (its queue deleted by hand, an error) would leave the feed deaf
      // on a live connection: start over with a new connection and queue.
      channel.on("close", () => {
        if (this.#connection === opened) closeConnection(opened);
      });
      // Declared here too, so a replica that starts before anything else still binds.
      await channel.assertExchange(EXCHANGE, "topic", { durable: true });
      const { queue } = await channel.assertQueue("", {
        exclusive: true,
        autoDelete: true,
        durable: false,
      });
      for (const key of feed.bindings) await channel.bindQueue(queue, EXCHANGE, key);
      await channel.consume(queue, (msg) => {
        if (msg === null) {
          // The broker cancelled the consumer: start over, as for a closed channel.
          if (this.#connection === opened) closeConnection(opened);
          return;
        }
        try {
          onEvent({ routingKey: msg.fields.routingKey, body: parseJson(msg.content) });
        } catch (err) {
          log.error("feed listener failed", { error: errorText(err) });
        }
      }, { noAck: true });
      if (this.#stopped) {
        await closeConnection(connection);
        return;
      }
      this.#connection = connection;
      this.#backoff.reset();
      log.debug("feed listening", { queue, bindings: feed.bindings.join(",") });
      onReady?.();
    } catch (err) {
      if (connection) await closeConnection(connection);
      if (!this.#stopped) {
        log.debug("feed not connected", { error: errorText(err) });
        this.#retry();
      }
    } finally {
      this.#connecting = undefined;
    }
  }

  #lost(connection: ChannelModel): void {
    if (this.#connection !== connection) return;
    this.#connection = undefined;
    if (this.#stopped) return;
    // The node may be going down: the next attempt starts from another node of the cluster.
    this.#nodes.moveOn();
    this.options.log.warn("feed connection lost; reconnecting");
    this.#retry();
  }

  #retry(): void {
    if (this.#stopped || this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.start();
    }, this.#backoff.next());
  }
}
