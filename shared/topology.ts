/**
 * The broker topology in one table: the exchange, each consumer's work queue with its bindings,
 * and the dead-letter and retry queues derived from it.
 * @module
 */

/** The one topic exchange every event goes through. */
export const EXCHANGE = "orders_exchange";

/** A work queue owned by one service. */
export interface WorkQueue {
  /** Queue name, also the stem of its `_dlq` and `_retry` queues. */
  name: string;
  /** Routing keys bound to it on {@linkcode EXCHANGE}. */
  bindings: readonly string[];
  /** The service that consumes it. */
  consumer: "order" | "inventory" | "notification";
}

/** Every work queue of the pipeline. */
export const WORK_QUEUES: readonly WorkQueue[] = [
  { name: "order_placed", bindings: ["order.placed"], consumer: "inventory" },
  { name: "inventory_reserved", bindings: ["inventory.reserved"], consumer: "notification" },
  { name: "inventory_failed", bindings: ["inventory.failed"], consumer: "notification" },
  {
    name: "order_status",
    bindings: ["inventory.reserved", "inventory.failed"],
    consumer: "order",
  },
];

/** Name of the dead-letter queue of a work queue. */
export const dlqOf = (queue: string): string => `${queue}_dlq`;

/** Name of the delay queue that holds a message between retries, then returns it to `queue`. */
export const retryQueueOf = (queue: string): string => `${queue}_retry`;

/** A queue declaration: name plus the arguments it must be declared with. */
export interface QueueDeclaration {
  name: string;
  arguments: Record<string, string>;
}

/**
 * The three queues behind a work queue. The work queue dead-letters to its DLQ through the
 * default exchange (the contract existing tools declare); the DLQ is a plain durable queue
 * with no arguments; the retry queue dead-letters expired messages back to the work queue.
 */
export function declarationsOf(queue: WorkQueue): QueueDeclaration[] {
  return [
    {
      name: queue.name,
      arguments: {
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": dlqOf(queue.name),
      },
    },
    { name: dlqOf(queue.name), arguments: {} },
    {
      name: retryQueueOf(queue.name),
      arguments: {
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": queue.name,
      },
    },
  ];
}

/** The work queues a service consumes. */
export function queuesConsumedBy(service: WorkQueue["consumer"]): WorkQueue[] {
  return WORK_QUEUES.filter((q) => q.consumer === service);
}

/** Finds a work queue by name; throws `RangeError` for a name not in the table. */
export function workQueue(name: string): WorkQueue {
  const queue = WORK_QUEUES.find((q) => q.name === name);
  if (!queue) throw new RangeError(`Unknown work queue "${name}"`);
  return queue;
}
