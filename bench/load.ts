/** End-to-end load: orders placed over HTTP by N workers, then followed until every one is final. */
import type { OrderView } from "../tests/support.ts";
import { type LatencySummary, perSecond, round, summarize } from "./stats.ts";

/** An order the service accepted with `201`. */
export interface AcceptedOrder {
  order_id: string;
  /** Its lines: one for a single-item order, several for a cart. */
  lines: { item: string; qty: number }[];
}

/** What placing a round of orders gave. */
export interface Placement {
  accepted: AcceptedOrder[];
  /** Answers other than `201`, and requests that failed outright. */
  errors: number;
  /** The first few errors, for the report. */
  errorSamples: string[];
  /** Duration of each accepted `POST /order`, in ms. */
  durations: number[];
  /** Wall-clock time of the first request (ms since the epoch), comparable to the services' timestamps. */
  startedAt: number;
  /** From the first request to the last answer, in ms. */
  postingMs: number;
}

/** Settings of {@linkcode placeOrders}. */
export interface PlaceOptions {
  /** Base URL of the order service, e.g. `http://127.0.0.1:5001`. */
  orderUrl: string;
  count: number;
  concurrency: number;
  /** Student id of every order of the round, so the round can be listed on its own. */
  studentId: string;
  /** Items, used round-robin. */
  items: readonly string[];
  /**
   * Lines of each order: 1 (default) sends the classic `{item, qty}` body, more send a cart of
   * that many different items, `{lines: [...]}`.
   */
  linesPerOrder?: number;
  /** Called after every answer with the number answered so far. */
  onProgress?: (answered: number) => void;
}

/**
 * The body of order `i` of a round: item `items[i % items.length]` with quantity 1 to 3, or,
 * with `linesPerOrder` above 1, a cart of the items that follow it, listed forwards or
 * backwards in turn so that carts lock their items in mixed orders.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { orderBody } from "./load.ts";
 *
 * assert.deepEqual(orderBody(0, ["Tea", "Soup"], "S1"), { item: "Tea", qty: 1, student_id: "S1" });
 * assert.deepEqual(orderBody(1, ["Tea", "Soup", "Pie"], "S1", 2), {
 *   student_id: "S1",
 *   lines: [{ item: "Pie", qty: 3 }, { item: "Soup", qty: 2 }],
 * });
 * ```
 */
export function orderBody(
  i: number,
  items: readonly string[],
  studentId: string,
  linesPerOrder = 1,
): { item: string; qty: number; student_id: string } | {
  student_id: string;
  lines: { item: string; qty: number }[];
} {
  if (linesPerOrder <= 1) {
    return { item: items[i % items.length], qty: 1 + (i % 3), student_id: studentId };
  }
  const lines = Array.from({ length: Math.min(linesPerOrder, items.length) }, (_, k) => ({
    item: items[(i + k) % items.length],
    qty: 1 + ((i + k) % 3),
  }));
  return { student_id: studentId, lines: i % 2 ? lines.reverse() : lines };
}

/**
 * How long one request of the benchmark may take: a service that stops answering then shows as
 * errors in the report, its log's last lines beside them, instead of a run that never ends.
 */
export const REQUEST_TIMEOUT_MS = 30_000;

/**
 * Places `count` orders with `concurrency` workers, each sending one `POST /order` at a time
 * over a kept-alive connection; order `i` is {@linkcode orderBody}`(i)`.
 */
export async function placeOrders(options: PlaceOptions): Promise<Placement> {
  const { orderUrl, count, concurrency, studentId, items, linesPerOrder, onProgress } = options;
  const url = `${orderUrl}/order`;
  const accepted: AcceptedOrder[] = [];
  const durations: number[] = [];
  const errorSamples: string[] = [];
  let errors = 0;
  let next = 0;
  let answered = 0;
  const worker = async () => {
    while (true) {
      const i = next++;
      if (i >= count) return;
      const order = orderBody(i, items, studentId, linesPerOrder);
      const started = performance.now();
      try {
        const res = await fetch(url, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(order),
          signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        });
        const text = await res.text();
        if (res.status === 201) {
          durations.push(performance.now() - started);
          const { order_id } = JSON.parse(text) as OrderView;
          const lines = "lines" in order ? order.lines : [{ item: order.item, qty: order.qty }];
          accepted.push({ order_id, lines });
        } else {
          errors++;
          if (errorSamples.length < 5) errorSamples.push(`${res.status} ${text.slice(0, 200)}`);
        }
      } catch (err) {
        errors++;
        if (errorSamples.length < 5) errorSamples.push(String(err));
      }
      onProgress?.(++answered);
    }
  };
  const startedAt = Date.now();
  const started = performance.now();
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return {
    accepted,
    errors,
    errorSamples,
    durations,
    startedAt,
    postingMs: performance.now() - started,
  };
}

/** Settings of {@linkcode waitUntilFinal}. */
export interface WaitFinalOptions {
  orderUrl: string;
  studentId: string;
  timeoutMs: number;
  intervalMs?: number;
  /** Called on each poll with the time waited so far. */
  onPoll?: (waitedMs: number) => void | Promise<void>;
}

/**
 * Polls until no order of `studentId` is still `PLACED`; true when that happened in time. Each
 * poll asks for one row, so waiting costs the order service next to nothing.
 */
export async function waitUntilFinal(options: WaitFinalOptions): Promise<boolean> {
  const { orderUrl, studentId, timeoutMs, intervalMs = 100, onPoll } = options;
  const url = `${orderUrl}/orders?student_id=${
    encodeURIComponent(studentId)
  }&status=PLACED&limit=1`;
  const started = performance.now();
  while (true) {
    const res = await fetch(url, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    const pending = await res.json() as OrderView[];
    if (res.ok && pending.length === 0) return true;
    const waited = performance.now() - started;
    if (waited > timeoutMs) return false;
    await onPoll?.(waited);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Every order of `studentId` as the order service lists it. */
export async function ordersOf(orderUrl: string, studentId: string): Promise<OrderView[]> {
  const res = await fetch(`${orderUrl}/orders?student_id=${encodeURIComponent(studentId)}`);
  if (!res.ok) throw new Error(`GET /orders answered ${res.status}: ${await res.text()}`);
  return await res.json() as OrderView[];
}

/** When each order was accepted and when it became final, by the order service's own clock. */
export interface Finality {
  /** Orders of the round that reached `RESERVED` or `FAILED`. */
  final: number;
  /** Accepted orders still `PLACED` (or missing) when the wait ended. */
  unfinished: number;
  /** Acceptance (`created_at`) to final status (`updated_at`) of each final order. */
  latency: LatencySummary;
  /** Earliest and latest final status, ms since the epoch. */
  firstFinalAt: number;
  lastFinalAt: number;
}

/** Reads acceptance-to-final latencies of `accepted` from the listed orders. */
export function finality(
  accepted: readonly AcceptedOrder[],
  listed: readonly OrderView[],
): Finality {
  const byId = new Map(listed.map((o) => [o.order_id, o]));
  const latencies: number[] = [];
  let firstFinalAt = Infinity;
  let lastFinalAt = -Infinity;
  for (const { order_id } of accepted) {
    const order = byId.get(order_id);
    if (!order || order.status === "PLACED") continue;
    const finalAt = Date.parse(order.updated_at);
    latencies.push(finalAt - Date.parse(order.created_at));
    firstFinalAt = Math.min(firstFinalAt, finalAt);
    lastFinalAt = Math.max(lastFinalAt, finalAt);
  }
  return {
    final: latencies.length,
    unfinished: accepted.length - latencies.length,
    latency: summarize(latencies),
    firstFinalAt,
    lastFinalAt,
  };
}

/** Figures of one end-to-end round. */
export interface LoadResult {
  concurrency: number;
  orders: number;
  /** Lines of each order: 1 for single-item orders, more for a round of carts. */
  lines_per_order: number;
  accepted: number;
  errors: number;
  error_samples: string[];
  /** Accepted orders per second, first request to last answer. */
  accepted_per_s: number;
  /** `POST /order` round trip as the client saw it. */
  post: LatencySummary;
  /** Final orders per second, first request to the last final status. */
  completed_per_s: number;
  /** First request to the last final status. */
  seconds_to_all_final: number;
  /** Acceptance to final status, from the order service's `created_at` and `updated_at`. */
  accept_to_final: LatencySummary;
  unfinished: number;
  /**
   * CPU per order of each process over this round alone, in ms (the services together as
   * `services`); absent in older results.
   */
  cpu_per_order_ms?: Record<string, number>;
}

/** One round as run: its orders placed and followed until final, figures still to be read. */
export interface LoadRound {
  concurrency: number;
  orders: number;
  /** Lines of each order placed. */
  linesPerOrder: number;
  studentId: string;
  placement: Placement;
  /** Whether every order was final before the timeout. */
  allFinal: boolean;
  /** Wall-clock ms when polling saw no order left `PLACED` (within one poll interval). */
  finalSeenAt: number;
}

/** Settings of {@linkcode runLoad}. */
export interface LoadOptions extends PlaceOptions {
  timeoutMs: number;
  /** Called while waiting for final statuses. */
  onWait?: (waitedMs: number) => void | Promise<void>;
}

/**
 * Places a round of orders and waits until all are final: one end-to-end measurement. Its
 * figures come from {@linkcode summarizeRound} once the orders are listed, which the caller may
 * postpone so that listing thousands of orders does not weigh on the measured footprint.
 */
export async function runLoad(options: LoadOptions): Promise<LoadRound> {
  const placement = await placeOrders(options);
  const allFinal = await waitUntilFinal({
    orderUrl: options.orderUrl,
    studentId: options.studentId,
    timeoutMs: options.timeoutMs,
    onPoll: options.onWait,
  });
  return {
    concurrency: options.concurrency,
    orders: options.count,
    linesPerOrder: Math.max(1, options.linesPerOrder ?? 1),
    studentId: options.studentId,
    placement,
    allFinal,
    finalSeenAt: Date.now(),
  };
}

/** The figures of a round, given its orders as the order service lists them. */
export function summarizeRound(run: LoadRound, listed: readonly OrderView[]): LoadResult {
  const { placement } = run;
  const fin = finality(placement.accepted, listed);
  const allFinalMs = fin.lastFinalAt - placement.startedAt;
  return {
    concurrency: run.concurrency,
    orders: run.orders,
    lines_per_order: run.linesPerOrder,
    accepted: placement.accepted.length,
    errors: placement.errors,
    error_samples: placement.errorSamples,
    accepted_per_s: perSecond(placement.accepted.length, placement.postingMs),
    post: summarize(placement.durations),
    completed_per_s: fin.final ? perSecond(fin.final, allFinalMs) : 0,
    seconds_to_all_final: fin.final ? round(allFinalMs / 1000, 2) : NaN,
    accept_to_final: fin.latency,
    unfinished: fin.unfinished,
  };
}
