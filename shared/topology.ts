/**
 * Who is who and who consumes what, in two tables: the services (name, port, task), and the
 * exchange with each consumer's work queue and its bindings, from which the dead-letter and retry
 * queues are derived. Both are typed, so a misspelt service or queue does not compile.
 * @module
 */

/**
 * The three services of the pipeline, in start order: name, default HTTP port (the
 * compatibility contract) and the `deno task` that runs one alone.
 */
export const SERVICES = [
  { name: "order", port: 5001, task: "order" },
  { name: "inventory", port: 5002, task: "inventory" },
  { name: "notification", port: 5003, task: "notification" },
] as const;

/** The name of a service: `"order"`, `"inventory"` or `"notification"`. */
export type ServiceName = typeof SERVICES[number]["name"];

/** The services' names, in start order. */
export const SERVICE_NAMES: readonly ServiceName[] = SERVICES.map((s) => s.name);

/** The one topic exchange every event goes through. */
export const EXCHANGE = "orders_exchange";

/** A work queue owned by one service. */
export interface WorkQueue {
  /** Queue name, also the stem of its `_dlq` and `_retry` queues. */
  readonly name: string;
  /** Routing keys bound to it on {@linkcode EXCHANGE}. */
  readonly bindings: readonly string[];
  /** The service that consumes it. */
  readonly consumer: ServiceName;
}

/** Every work queue of the pipeline. */
export const WORK_QUEUES = [
  { name: "order_placed", bindings: ["order.placed"], consumer: "inventory" },
  { name: "inventory_reserved", bindings: ["inventory.reserved"], consumer: "notification" },
  { name: "inventory_failed", bindings: ["inventory.failed"], consumer: "notification" },
  {
    name: "order_status",
    bindings: ["inventory.reserved", "inventory.failed"],
    consumer: "order",
  },
] as const satisfies readonly WorkQueue[];

/** The name of a work queue, e.g. `"order_placed"`. */
export type WorkQueueName = typeof WORK_QUEUES[number]["name"];

/**
 * The names of the work queues `S` consumes, e.g. `QueueOf<"notification">` is
 * `"inventory_reserved" | "inventory_failed"`.
 */
export type QueueOf<S extends ServiceName> = Extract<
  typeof WORK_QUEUES[number],
  { consumer: S }
>["name"];

/**
 * A live feed of events for every running replica of a service, e.g. for pages that show order
 * statuses as they change. Unlike a work queue, each replica declares its own queue (server-named,
 * exclusive, auto-delete: it goes away with the connection), so every replica hears every event;
 * it has no DLQ and no retry, because what it carries is also recorded by the work queues.
 */
export interface EventFeed {
  /** The service whose replicas each hear the feed. */
  readonly listener: ServiceName;
  /** Routing keys bound to each replica's queue on {@linkcode EXCHANGE}. */
  readonly bindings: readonly string[];
}

/**
 * Every event feed. `order.placed` is left out on purpose: a publish is mandatory so that it
 * comes back when its work queue is missing, and a feed queue bound to the same key would
 * swallow that signal.
 */
export const EVENT_FEEDS = [
  { listener: "order", bindings: ["inventory.reserved", "inventory.failed"] },
] as const satisfies readonly EventFeed[];

/** The event feed of `service`, when it has one. */
export function eventFeedOf(service: ServiceName): EventFeed | undefined {
  return EVENT_FEEDS.find((feed) => feed.listener === service);
}

/** Name of the dead-letter queue of a work queue. */
export const dlqOf = (queue: string): string => `${queue}_dlq`;

/** Name of the delay queue that holds a message between retries, then returns it to `queue`. */
export const retryQueueOf = (queue: string): string => `${queue}_retry`;

/** A queue declaration: name plus the arguments it must be declared with. */
export interface QueueDeclaration {
  /** Queue name. */
  name: string;
  /** Arguments it is declared with (`x-dead-letter-exchange`, …). */
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
