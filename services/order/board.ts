/**
 * What the kitchen board shows: orders counted by status, the latest orders, the stock of each
 * item and the depth of each work queue and its DLQ. It is worked out again whenever something
 * changes and, while anyone watches, every few seconds (queue depths change without an event
 * this service hears); each new board goes out through the event streams.
 * @module
 */
import { errorText } from "@campus/shared/log";
import { Coalesced } from "./coalesced.ts";
import { dlqOf, WORK_QUEUES } from "@campus/shared/topology";
import type { OrderStatus, OrderStore } from "./order_store.ts";
import { type OrderView, viewOfOrder } from "./order_view.ts";
import type { Menu, StockView } from "./stock_view.ts";

/** Ready messages in a work queue and in its DLQ. */
export interface QueueDepth {
  queue: string;
  depth: number;
  dlq: string;
  dlq_depth: number;
}

/** The board at one moment. */
export interface Board {
  counts: Record<OrderStatus, number>;
  /** The most recent orders, newest first. */
  latest: OrderView[];
  stock: Menu;
  /** Null while the broker cannot be asked; `queues_error` says why. */
  queues: QueueDepth[] | null;
  queues_error?: string;
  updated_at: string;
}

/** How many orders the board lists. */
export const LATEST_ORDERS = 15;

/** Options of {@linkcode BoardView}. */
export interface BoardViewOptions {
  orders: OrderStore;
  stock: StockView;
  /** Ready messages in a queue (a passive declare). */
  queueDepth: (queue: string) => Promise<number>;
  /** Hears every new board. */
  onChange: (board: Board) => void;
  /** Period of the refresh while anyone watches. */
  intervalMs?: number;
}

/** The board, kept current while it has watchers. */
export class BoardView {
  #board: Board | undefined;
  #watchers = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  #builds = new Coalesced(async () => {
    const board = await this.#build();
    this.#board = board;
    this.options.onChange(board);
    return board;
  });

  constructor(private readonly options: BoardViewOptions) {}

  /** The board as last built, or a new one. */
  async current(): Promise<Board> {
    return this.#board ?? await this.refresh();
  }

  /** Counts a watcher; the periodic refresh runs while there is one. Returns its release. */
  watch(): () => void {
    this.#watchers++;
    this.#timer ??= setInterval(() => {
      this.options.stock.refresh();
      this.refresh();
    }, this.options.intervalMs ?? 3_000);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--this.#watchers === 0) this.stop();
    };
  }

  /** Builds the board again now; a refresh asked for meanwhile runs once this one ends. */
  refresh(): Promise<Board> {
    return this.#builds.run();
  }

  /** Builds the board again shortly, once for however many changes arrive together. */
  refreshSoon(delayMs = 50): void {
    if (this.#watchers > 0) this.#builds.soon(delayMs);
  }

  /** Stops the periodic and pending refreshes. */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#builds.cancel();
  }

  async #build(): Promise<Board> {
    const { orders, stock } = this.options;
    const board: Board = {
      counts: await orders.statusCounts(),
      latest: (await orders.latest(LATEST_ORDERS)).map(viewOfOrder),
      stock: stock.current,
      queues: null,
      updated_at: new Date().toISOString(),
    };
    try {
      board.queues = await this.#depths();
    } catch (err) {
      board.queues_error = `the broker cannot be asked: ${errorText(err)}`;
    }
    return board;
  }

  async #depths(): Promise<QueueDepth[]> {
    const { queueDepth } = this.options;
    const depths: QueueDepth[] = [];
    for (const { name } of WORK_QUEUES) {
      depths.push({
        queue: name,
        depth: await queueDepth(name),
        dlq: dlqOf(name),
        dlq_depth: await queueDepth(dlqOf(name)),
      });
    }
    return depths;
  }
}
