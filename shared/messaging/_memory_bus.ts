/** An in-memory MessageBus for unit tests of handlers, the consumer policy and the relay. */
import type { Delivery, MessageBus, MessageProperties } from "./message_bus.ts";
import type { OutgoingEvent } from "./contract.ts";

/** A message the memory bus accepted. */
export interface SentMessage {
  /** The queue it was sent to. */
  queue: string;
  /** The body, decoded as UTF-8. */
  body: string;
  /** Its AMQP properties. */
  properties: MessageProperties;
}

/** Records what is published; `connected` and `failNext` simulate an absent broker. */
export class MemoryBus implements MessageBus {
  connected = true;
  /** Number of coming publish calls to refuse. */
  failNext = 0;
  /** Events published, in order. */
  readonly events: OutgoingEvent[] = [];
  /** Raw messages sent to queues (retry and dead-letter copies), in order. */
  readonly sent: SentMessage[] = [];
  #listeners: (() => void)[] = [];

  publishEvents(events: readonly OutgoingEvent[]): Promise<void> {
    this.#check();
    this.events.push(...events);
    return Promise.resolve();
  }

  sendToQueue(queue: string, content: Uint8Array, properties: MessageProperties): Promise<void> {
    this.#check();
    this.sent.push({ queue, body: new TextDecoder().decode(content), properties });
    return Promise.resolve();
  }

  onWritable(listener: () => void): void {
    this.#listeners.push(listener);
  }

  /** Simulates a reconnect. */
  reconnect(): void {
    this.connected = true;
    for (const listener of this.#listeners) listener();
  }

  #check(): void {
    if (!this.connected) throw new Error("Broker is not connected");
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error("Broker refused the publish");
    }
  }
}

/** A fake delivery that records how it was settled. */
export function fakeDelivery(
  body: string | Uint8Array,
  overrides: Partial<Omit<Delivery, "ack" | "reject">> = {},
): Delivery & { settled: "acked" | "rejected" | undefined } {
  const delivery = {
    queue: "order_placed",
    body: typeof body === "string" ? new TextEncoder().encode(body) : body,
    routingKey: "order.placed",
    headers: {},
    redelivered: false,
    channelOpen: true,
    settled: undefined as "acked" | "rejected" | undefined,
    ack() {
      delivery.settled = "acked";
    },
    reject() {
      delivery.settled = "rejected";
    },
    ...overrides,
  };
  return delivery;
}
