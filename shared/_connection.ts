/**
 * Opening a RabbitMQ connection the way every client of this project wants it, and declaring the
 * whole topology on it: for the self-healing session and for the queue admin.
 * @module
 */
// @deno-types="@types/amqplib"
import amqp from "amqplib";
import type { ChannelModel } from "amqplib";
import { declarationsOf, EXCHANGE, WORK_QUEUES } from "./topology.ts";

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
  return connection;
}

/**
 * Declares the exchange, every queue and every binding, on a channel of its own: a declaration
 * the broker refuses closes only that channel.
 */
export async function declareTopology(connection: ChannelModel): Promise<void> {
  const channel = await connection.createChannel();
  channel.on("error", () => {}); // surfaces as the failed declaration below
  try {
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
  } finally {
    await channel.close().catch(() => {});
  }
}

/**
 * Closes `connection`, gracefully when the broker answers within `timeoutMs`. The broker reads
 * nothing from a connection it blocks, its close included: such a socket is dropped, which
 * loses nothing (publishes still waiting for a confirm count as failed, deliveries come back).
 */
export async function closeConnection(connection: ChannelModel, timeoutMs = 2000): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const closed = connection.close().then(() => true, () => true);
  const late = new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), timeoutMs));
  const graceful = await Promise.race([closed, late]);
  clearTimeout(timer);
  if (graceful) return;
  // amqplib has no way to drop a connection, so its socket is destroyed underneath it.
  const socket = (connection as unknown as { connection: { stream: { destroy(e: Error): void } } })
    .connection.stream;
  socket.destroy(new Error(`No answer to the close within ${timeoutMs} ms`));
}

/** `url` with its password hidden, for logs. */
export function redact(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]+@/, "//$1:***@");
}

/**
 * Asks for 10 s heartbeats unless the URL sets its own: with the broker's 60 s default a peer
 * that vanished without closing the socket would go unnoticed for two minutes.
 */
function withHeartbeat(url: string): string {
  if (/[?&]heartbeat=/.test(url)) return url;
  return url + (url.includes("?") ? "&" : "?") + "heartbeat=10";
}
