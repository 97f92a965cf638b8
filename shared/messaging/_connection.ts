/**
 * Opening a RabbitMQ connection the way every client of this project wants it, to one of the
 * nodes of a cluster, and declaring the whole topology on it: for the self-healing session and
 * for the plain queue access (`queue_access.ts`).
 * @module
 */
// @deno-types="@types/amqplib"
import amqp from "amqplib";
import type { ChannelModel } from "amqplib";
import { declarationsOf, EXCHANGE, type TopologyOptions, WORK_QUEUES } from "./topology.ts";
import { beforeDeadline, EXPIRED } from "../runtime/deadline.ts";
import { coalesceWrites } from "./_coalesced_writes.ts";

const CONNECT_TIMEOUT_MS = 10_000;

/**
 * Connects to `url` as `name` (shown by `rabbitmqctl list_connections client_properties`).
 * `onError` hears connection errors from the first moment: an 'error' event nobody listens to
 * would crash the process.
 */
export async function openConnection(
  url: string,
  name: string,
  onError: (err: Error) => void,
): Promise<ChannelModel> {
  // The timeout bounds the TCP and AMQP handshake: a hung attempt would block every retry.
  const connection = await amqp.connect(withHeartbeat(url), {
    clientProperties: { connection_name: name },
    timeout: CONNECT_TIMEOUT_MS,
    // Without it Nagle holds small frames (a lone ack or publish) back for up to 40 ms.
    noDelay: true,
  });
  connection.on("error", onError);
  coalesceWrites(connection);
  return connection;
}

/**
 * The nodes of one cluster (a single node is a cluster of one), tried in turn: a connection goes
 * to the first that answers, starting from the node in use; after a loss, from the next one.
 */
export class BrokerNodes {
  readonly urls: readonly string[];
  #current = 0;

  /** @param urls the nodes' URLs, as a list or comma-separated (`AMQP_URL`) */
  constructor(urls: string | readonly string[]) {
    this.urls = typeof urls === "string"
      ? urls.split(",").map((url) => url.trim()).filter(Boolean)
      : [...urls];
    if (this.urls.length === 0) throw new TypeError("No broker URL given");
  }

  /** The node in use, or to be tried first. */
  get current(): string {
    return this.urls[this.#current];
  }

  /**
   * Connects to the node in use, or else to the next that answers, which becomes the node in
   * use; throws what the last node answered when none does.
   */
  async connect(name: string, onError: (err: Error) => void): Promise<ChannelModel> {
    let failure: unknown;
    for (let tried = 0; tried < this.urls.length; tried++) {
      try {
        return await openConnection(this.current, name, onError);
      } catch (err) {
        failure = err;
        this.moveOn();
      }
    }
    throw failure;
  }

  /** Leaves the node in use for the next: its connection was lost, it may be going down. */
  moveOn(): void {
    this.#current = (this.#current + 1) % this.urls.length;
  }
}

/**
 * Declares the exchange, every queue and every binding, on a channel of its own: a declaration
 * the broker refuses closes only that channel. `options` say how queues are declared (their
 * type), and must be the same for every process using the broker.
 */
export async function declareTopology(
  connection: ChannelModel,
  options: TopologyOptions = {},
): Promise<void> {
  const channel = await connection.createChannel();
  channel.on("error", () => {}); // surfaces as the failed declaration below
  try {
    await channel.assertExchange(EXCHANGE, "topic", { durable: true });
    for (const queue of WORK_QUEUES) {
      for (const declaration of declarationsOf(queue, options)) {
        await channel.assertQueue(declaration.name, {
          durable: true,
          arguments: declaration.arguments,
        });
      }
      for (const key of queue.bindings) await channel.bindQueue(queue.name, EXCHANGE, key);
    }
  } finally {
    await channel.close().catch(() => {});
  }
}

/**
 * Closes `connection`, gracefully when the broker answers within `timeoutMs`. The broker reads
 * nothing from a connection it blocks, its close included: such a socket is dropped, which
 * loses nothing (publishes still waiting for a confirm count as failed, deliveries come back).
 * Never rejects, so that callers that do not wait for it (a lost session) cannot end the
 * process.
 */
export async function closeConnection(connection: ChannelModel, timeoutMs = 2000): Promise<void> {
  const closed = connection.close().then(() => {}, () => {});
  if (await beforeDeadline(closed, timeoutMs) !== EXPIRED) return;
  // amqplib has no way to drop a connection, so its socket is destroyed underneath it.
  try {
    const socket =
      (connection as unknown as { connection: { stream: { destroy(e: Error): void } } })
        .connection.stream;
    socket.destroy(new Error(`No answer to the close within ${timeoutMs} ms`));
  } catch {
    // Already torn down: there is nothing left to drop.
  }
}

/**
 * Asks for 10 s heartbeats unless the URL sets its own: with the broker's 60 s default a peer
 * that vanished without closing the socket would go unnoticed for two minutes.
 */
function withHeartbeat(url: string): string {
  if (/[?&]heartbeat=/.test(url)) return url;
  return url + (url.includes("?") ? "&" : "?") + "heartbeat=10";
}
