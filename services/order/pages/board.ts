/**
 * What the kitchen board shows: the tickets of each kitchen step (reserved, preparing, ready),
 * the orders lately cancelled or expired, orders counted by status, the latest orders, the stock
 * of each item and the depth of each work queue and its DLQ. It is worked out again whenever something
 * changes and, while anyone watches, every few seconds (queue depths change without an event
 * this service hears); each new board goes out through the event streams. A board that cannot
 * be built (the database does not answer) is logged and tried again with backoff, while the
 * last one stays on show: nothing the board does in the background may end the service.
 * @module
 */
import { Backoff } from "@campus/shared/backoff";
import { errorText, type Logger } from "@campus/shared/log";
import { Coalesced } from "./coalesced.ts";
import { dlqOf, WORK_QUEUES } from "@campus/shared/topology";
import type { Order, OrderStatus } from "../order.ts";
import type { OrderStore } from "../order_store.ts";
import { type OrderView, viewOfOrder } from "../order_view.ts";
import type { Menu, StockView } from "./stock_view.ts";

/** Ready messages in a work queue and in its DLQ. */
export interface QueueDepth {
  /** The work queue. */
  queue: string;
  /** Ready messages in it. */
  depth: number;
  /** Its dead-letter queue. */
  dlq: string;
  /** Ready messages in the DLQ. */
  dlq_depth: number;
}

/** The kitchen's steps, a column of tickets each, in the order food goes through them. */
export const KITCHEN_COLUMNS = ["RESERVED", "PREPARING", "READY"] as const;

/** A column of the kitchen: `RESERVED`, `PREPARING` or `READY`. */
export type KitchenColumn = typeof KITCHEN_COLUMNS[number];

/** Statuses of orders the kitchen must not make (any more): shown struck through. */
export const ENDED_STATUSES: readonly OrderStatus[] = ["CANCELLED", "EXPIRED"];

/** The board at one moment. */
export interface Board {
  /** The tickets of each kitchen step, oldest first, at most {@linkcode TICKETS_PER_COLUMN}. */
  tickets: Record<KitchenColumn, OrderView[]>;
  /**
   * Orders lately cancelled or expired, newest first, at most {@linkcode ENDED_SHOWN}: those this
   * replica saw end (its own moves, and every replica's through the event feed) and those among
   * the latest orders.
   */
  ended: OrderView[];
  /** How many orders stand at each status. */
  counts: Record<OrderStatus, number>;
  /** The most recent orders, newest first. */
  latest: OrderView[];
  /** The menu and its stock levels. */
  stock: Menu;
  /** Null while the broker cannot be asked; `queues_error` says why. */
  queues: QueueDepth[] | null;
  /** Why the queues could not be read. */
  queues_error?: string;
  /** When the board was built, an ISO time. */
  updated_at: string;
}

/** How many orders the board lists. */
export const LATEST_ORDERS = 15;

/** How many tickets a column shows; its count says how many more wait. */
export const TICKETS_PER_COLUMN = 30;

/** How many cancelled or expired orders the board shows. */
export const ENDED_SHOWN = 12;

/** Options of {@linkcode BoardView}. */
export interface BoardViewOptions {
  /** Where the orders are read. */
  orders: OrderStore;
  /** The stock levels, kept by the live pages. */
  stock: StockView;
  /**
   * Ready messages in each of the queues, read without declaring anything; a queue left out of
   * the answer could not be read.
   */
  queueDepths: (queues: readonly string[]) => Promise<Map<string, number>>;
  /** Hears every new board. */
  onChange: (board: Board) => void;
  /** Where a board that cannot be built is reported. */
  log: Logger;
  /** Period of the refresh while anyone watches. */
  intervalMs?: number;
}

/** Longest wait between attempts while boards cannot be built. */
const MAX_RETRY_MS = 30_000;

/** The board, kept current while it has watchers. */
export class BoardView {
  #watchers = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #builds: Coalesced<Board | undefined>;
  #backoff: Backoff;
  /** Why the last build failed; empty after one that worked. */
  #failure = "";
  /** Orders seen to end lately, newest first: the board shows them struck through. */
  #ended: OrderView[] = [];

  /** A board view, not yet watched: it refreshes periodically only while watched. */
  constructor(private readonly options: BoardViewOptions) {
    const intervalMs = options.intervalMs ?? 3_000;
    this.#backoff = new Backoff({
      initialMs: intervalMs,
      maxMs: Math.max(intervalMs, MAX_RETRY_MS),
    });
    this.#builds = new Coalesced(() => this.#rebuild(), (err) => this.#failed(err));
  }

  /** Counts a watcher; the periodic refresh runs while there is one. Returns its release. */
  watch(): () => void {
    this.#watchers++;
    if (this.#timer === undefined) this.#schedule(this.options.intervalMs ?? 3_000);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--this.#watchers === 0) this.stop();
    };
  }

  /**
   * Builds the board again now; a refresh asked for meanwhile runs once this one ends. Resolves
   * with the new board, or undefined when it could not be built (that is logged); never rejects.
   */
  refresh(): Promise<Board | undefined> {
    return this.#builds.run();
  }

  /** Builds the board again shortly, once for however many changes arrive together. */
  refreshSoon(delayMs = 50): void {
    if (this.#watchers > 0) this.#builds.soon(delayMs);
  }

  /**
   * Keeps `order` for the board's list of cancelled and expired orders when it is one (a move
   * seen on this replica or heard from another), and builds the board again shortly.
   */
  orderChanged(order: OrderView): void {
    if (ENDED_STATUSES.includes(order.status)) {
      // A cancel heard from the feed carries no time: it ended about now.
      const seen = { ...order, updated_at: order.updated_at ?? new Date().toISOString() };
      this.#ended = [seen, ...this.#ended.filter((o) => o.order_id !== order.order_id)]
        .slice(0, ENDED_SHOWN);
    }
    this.refreshSoon();
  }

  /** Stops the periodic and pending refreshes. */
  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#builds.cancel();
  }

  /** The next periodic refresh: after the interval, or after a backoff while builds fail. */
  #schedule(delayMs: number): void {
    const timer = setTimeout(async () => {
      this.options.stock.refresh();
      const board = await this.refresh();
      // Stopped meanwhile (and perhaps watched again, with a timer of its own).
      if (this.#timer !== timer) return;
      this.#schedule(board ? this.options.intervalMs ?? 3_000 : this.#backoff.next());
    }, delayMs);
    this.#timer = timer;
  }

  async #rebuild(): Promise<Board | undefined> {
    let board: Board;
    try {
      board = await this.#build();
    } catch (err) {
      this.#failed(err);
      return undefined;
    }
    if (this.#failure) this.options.log.info("board built again", { after: this.#failure });
    this.#failure = "";
    this.#backoff.reset();
    try {
      this.options.onChange(board);
    } catch (err) {
      this.options.log.error("a new board could not be sent", { error: errorText(err) });
    }
    return board;
  }

  #failed(err: unknown): void {
    const failure = errorText(err);
    // Said once per cause, not at every retry while it lasts.
    if (failure !== this.#failure) {
      this.options.log.warn("board not built; trying again with backoff", { error: failure });
    }
    this.#failure = failure;
  }

  async #build(): Promise<Board> {
    const { orders, stock } = this.options;
    const tickets = {} as Record<KitchenColumn, OrderView[]>;
    for (const column of KITCHEN_COLUMNS) {
      tickets[column] = (await this.#oldest(column, TICKETS_PER_COLUMN)).map(viewOfOrder);
    }
    const latest = (await orders.latest(LATEST_ORDERS)).map(viewOfOrder);
    const board: Board = {
      tickets,
      ended: this.#endedWith(latest),
      counts: await orders.statusCounts(),
      latest,
      stock: stock.current,
      queues: null,
      updated_at: new Date().toISOString(),
    };
    const depths = await this.#depths();
    board.queues = depths.queues;
    if (depths.error !== undefined) board.queues_error = depths.error;
    return board;
  }

  /** The `limit` oldest orders at `status`, read a page at a time and no further. */
  async #oldest(status: OrderStatus, limit: number): Promise<Order[]> {
    const found: Order[] = [];
    for await (const batch of this.options.orders.batches({ status, limit })) {
      found.push(...batch);
      if (found.length >= limit) break;
    }
    return found.slice(0, limit);
  }

  /** The orders seen to end, with those of `latest` that did, newest first. */
  #endedWith(latest: readonly OrderView[]): OrderView[] {
    const byId = new Map(this.#ended.map((order) => [order.order_id, order]));
    for (const order of latest) {
      if (ENDED_STATUSES.includes(order.status)) byId.set(order.order_id, order);
    }
    return [...byId.values()]
      .sort((a, b) => (b.updated_at ?? "").localeCompare(a.updated_at ?? ""))
      .slice(0, ENDED_SHOWN);
  }

  /** Every work queue's depth and its DLQ's, or null and why when the broker did not say all. */
  async #depths(): Promise<{ queues: QueueDepth[] | null; error?: string }> {
    const names = WORK_QUEUES.flatMap(({ name }) => [name, dlqOf(name)]);
    let read: Map<string, number>;
    try {
      read = await this.options.queueDepths(names);
    } catch (err) {
      return { queues: null, error: `the broker cannot be asked: ${errorText(err)}` };
    }
    const missing = names.filter((name) => !read.has(name));
    if (missing.length === names.length) {
      return { queues: null, error: "the broker cannot be asked just now" };
    }
    if (missing.length > 0) {
      return { queues: null, error: `the broker did not say the depth of ${missing.join(", ")}` };
    }
    const queues = WORK_QUEUES.map(({ name }) => ({
      queue: name,
      depth: read.get(name)!,
      dlq: dlqOf(name),
      dlq_depth: read.get(dlqOf(name))!,
    }));
    return { queues };
  }
}
