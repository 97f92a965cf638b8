/**
 * The Prometheus metrics every service exposes at `GET /metrics` (names prefixed `campus_`),
 * kept with `prom-client` in a registry of the service's own. Counters count committed effects;
 * gauges of stored state are read from the store when Prometheus scrapes.
 * @module
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";

/** The counters and the histogram of one consumed queue, made once per queue. */
export interface QueueMetrics {
  /** A message was handled and its effects committed. */
  consumed(): void;
  /** A message was set aside in a dead-letter queue. */
  deadLettered(): void;
  /** A message was sent to be tried again later. */
  retried(): void;
  /** Seconds from the start of handling a delivery to its settlement. */
  handled(seconds: number): void;
}

/** A histogram child per status code of one method on one route. */
type StatusChildren = Map<number, { observe(seconds: number): void }>;

/** Methods kept as they are in the `method` label; any other is `OTHER` (a client picks it). */
const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]);

/** The `route` label of a request no route matched. */
export const UNMATCHED_ROUTE = "unmatched";

/** A service's metrics. */
export class ServiceMetrics {
  /** The registry `GET /metrics` renders; services add their own metrics to it. */
  readonly registry = new Registry();
  #consumed: Counter<"queue">;
  #published: Counter<"routing_key">;
  #deadLettered: Counter<"queue">;
  #retries: Counter<"queue">;
  #handling: Histogram<"queue">;
  #requests: Histogram<"method" | "route" | "status">;
  #publishedChildren = new Map<string, { inc(): void }>();
  #requestChildren = new Map<string, Map<string, StatusChildren>>();

  constructor() {
    const registers = [this.registry];
    this.#consumed = new Counter({
      name: "campus_messages_consumed_total",
      help: "Messages handled with their effects committed, by queue.",
      labelNames: ["queue"],
      registers,
    });
    this.#published = new Counter({
      name: "campus_messages_published_total",
      help: "Messages the broker confirmed, by routing key (a queue name for retry and " +
        "dead-letter copies).",
      labelNames: ["routing_key"],
      registers,
    });
    this.#deadLettered = new Counter({
      name: "campus_messages_dead_lettered_total",
      help: "Messages set aside in a dead-letter queue, by the queue they came from.",
      labelNames: ["queue"],
      registers,
    });
    this.#retries = new Counter({
      name: "campus_message_retries_total",
      help: "Messages sent to be tried again after a failure, by queue.",
      labelNames: ["queue"],
      registers,
    });
    this.#handling = new Histogram({
      name: "campus_message_handling_duration_seconds",
      help: "Time from the start of handling a delivery to its ack or dead letter, by queue.",
      labelNames: ["queue"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.#requests = new Histogram({
      name: "campus_http_request_duration_seconds",
      help: "Time to answer an HTTP request, by method, route pattern and status.",
      labelNames: ["method", "route", "status"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
  }

  /** The metrics of `queue`; its series exist (at zero) from now on. */
  forQueue(queue: string): QueueMetrics {
    const consumed = this.#consumed.labels(queue);
    const deadLettered = this.#deadLettered.labels(queue);
    const retried = this.#retries.labels(queue);
    const handling = this.#handling.labels(queue);
    for (const counter of [consumed, deadLettered, retried]) counter.inc(0);
    this.#handling.zero({ queue });
    return {
      consumed: () => consumed.inc(),
      deadLettered: () => deadLettered.inc(),
      retried: () => retried.inc(),
      handled: (seconds) => handling.observe(seconds),
    };
  }

  /** Counts a message the broker confirmed. */
  published(routingKey: string): void {
    let child = this.#publishedChildren.get(routingKey);
    if (!child) {
      child = this.#published.labels(routingKey);
      this.#publishedChildren.set(routingKey, child);
    }
    child.inc();
  }

  /**
   * Records one answered request. `route` is the route's pattern (`/orders/:id`) or
   * {@linkcode UNMATCHED_ROUTE}, so that a label never holds a raw id.
   */
  request(method: string, route: string, status: number, seconds: number): void {
    const knownMethod = METHODS.has(method) ? method : "OTHER";
    let byMethod = this.#requestChildren.get(route);
    if (!byMethod) this.#requestChildren.set(route, byMethod = new Map());
    let byStatus = byMethod.get(knownMethod);
    if (!byStatus) byMethod.set(knownMethod, byStatus = new Map());
    let child = byStatus.get(status);
    if (!child) {
      child = this.#requests.labels(knownMethod, route, String(status));
      byStatus.set(status, child);
    }
    child.observe(seconds);
  }

  /** Adds a gauge whose value is read when Prometheus scrapes; `read` may be async. */
  gauge(name: string, help: string, read: () => number | Promise<number>): void {
    new Gauge({
      name,
      help,
      registers: [this.registry],
      async collect() {
        this.set(await read());
      },
    });
  }

  /** Adds a gauge with one label, all of whose series are read afresh at each scrape. */
  labelledGauge<L extends string>(
    name: string,
    help: string,
    label: L,
    read: () => Promise<Map<string, number>>,
  ): void {
    new Gauge({
      name,
      help,
      labelNames: [label],
      registers: [this.registry],
      async collect() {
        // A series that could not be read is left out, never shown with a stale value.
        this.reset();
        for (const [value, n] of await read()) this.labels(value).set(n);
      },
    });
  }

  /** The exposition text and its content type, for `GET /metrics`. */
  async render(): Promise<{ text: string; contentType: string }> {
    return { text: await this.registry.metrics(), contentType: this.registry.contentType };
  }
}
