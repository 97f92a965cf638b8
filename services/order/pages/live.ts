/**
 * The live side of the pages: event streams for the student page (`GET /events`) and the
 * board (`GET /board/events`), `GET /menu`, and what feeds them. Status changes arrive through
 * this replica's own queue on the event feed, so a page open on any replica hears of results
 * that another replica consumed, and of cancels and kitchen moves another replica made; stock comes from inventory, queue depths from the broker
 * (read, never declared: the services' own declarations are the only ones).
 * @module
 */
import { type FeedEvent, FeedListener } from "@campus/shared/amqp_feed";
import { type Caller, forbidden, serviceCredential } from "@campus/shared/auth";
import type { Config } from "@campus/shared/config";
import { HttpError, json, type Route } from "@campus/shared/http";
import { events } from "@campus/shared/events";
import { errorText, type Logger } from "@campus/shared/log";
import { eventFeedOf } from "@campus/shared/topology";
import { BoardView } from "./board.ts";
import { EventStreams } from "./event_stream.ts";
import { LiveHub } from "./live_hub.ts";
import type { Order } from "../order.ts";
import type { OrderStore } from "../order_store.ts";
import { viewOfOrder } from "../order_view.ts";
import { viewOfFeedEvent } from "./feed_view.ts";
import { StockView } from "./stock_view.ts";

/** How many of a student's orders the student page gets when it (re)connects. */
export const STUDENT_ORDERS = 50;

/** Stock read longer ago than this is read again when a page connects. */
const STOCK_FRESH_MS = 5_000;

/** What the live pages need; tests replace the broker and inventory parts. */
export interface LivePagesDeps {
  /** The service configuration. */
  config: Readonly<Config>;
  /** Where the orders are read. */
  orders: OrderStore;
  /** Where failures of the feeds are reported. */
  log: Logger;
  /** Ready messages in each queue, read with passive declares (the service's broker session). */
  queueDepths: (queues: readonly string[]) => Promise<Map<string, number>>;
  /** How inventory is asked for stock. */
  fetch?: typeof fetch;
  /** Listen to the event feed (default true). */
  feed?: boolean;
  /** Period of the board's refresh while it is watched. */
  boardIntervalMs?: number;
  /** Period of the streams' heartbeat comments. */
  heartbeatMs?: number;
  /** Unsent bytes a stream may hold before it is closed (default `MAX_UNSENT_BYTES`). */
  maxUnsentBytes?: number;
}

/** The live pages of one order replica. */
export interface LivePages {
  /** The routes of the event streams and the menu. */
  routes: Route[];
  /** An order placed on this replica. */
  orderPlaced(order: Order): void;
  /**
   * A move (a cancel, a kitchen step, an expiry) this replica committed: the order's pages and
   * the board hear it at once, without waiting for the feed.
   */
  orderChanged(order: Order): void;
  /**
   * An event heard on the feed: an inventory result (from whichever replica consumed it), or a
   * cancel or kitchen move (from whichever replica made it).
   */
  heard(event: FeedEvent): void;
  /** Orders changed in this replica's store (a result was applied). */
  ordersChanged(): void;
  /** Reads the stock once; the event feed connects when the first stream opens. */
  start(): void;
  /** Ends every stream and closes the broker connections. */
  stop(): Promise<void>;
}

/** Builds the live pages. */
export function createLivePages(deps: LivePagesDeps): LivePages {
  const { config, orders, log } = deps;
  const hub = new LiveHub();
  const streams = new EventStreams({
    heartbeatMs: deps.heartbeatMs,
    perStudent: config.streamsPerStudent,
    max: config.maxStreams,
    maxUnsentBytes: deps.maxUnsentBytes,
    log,
  });
  const stock = new StockView({
    inventoryUrl: config.inventoryUrl,
    menu: config.menu,
    log,
    fetch: deps.fetch,
    // Inventory checks tokens too while authentication is on: the service signs its own.
    authorization: config.authSecret ? serviceCredential(config.authSecret, "order") : undefined,
    onChange: (menu) => hub.publish({ kind: "menu", menu }),
  });
  const board = new BoardView({
    orders,
    stock,
    queueDepths: deps.queueDepths,
    log,
    intervalMs: deps.boardIntervalMs,
    onChange: (board) => hub.publish({ kind: "board", board }),
  });
  hub.subscribe((update) => {
    if (update.kind === "order") board.orderChanged(update.order);
    else if (update.kind !== "board") board.refreshSoon();
  });
  const heard = (event: FeedEvent) => {
    // With no page open nobody hears it: under load, decoding every result and reading stock
    // for nobody cost the order service a tenth of its allocations.
    if (streams.size === 0) return;
    let order;
    try {
      order = viewOfFeedEvent(event);
    } catch (err) {
      // The work queue dead-letters it with the reason; the pages just don't show it.
      log.debug("feed event not shown", {
        routing_key: event.routingKey,
        error: errorText(err),
      });
      return;
    }
    hub.publish({ kind: "order", order });
    // A kitchen step moves no stock; a result takes it, and a cancel gives it back.
    if (event.routingKey !== events.OrderStatusChanged.routingKey) stock.refreshSoon();
  };
  const feedOf = eventFeedOf("order");
  // The feed is for the pages alone: it connects when the first stream opens, not at start-up,
  // so a replica no page ever watches keeps no second broker connection and no copy of every
  // result. Once connected it stays; `onReady` resyncs the streams opened while it connected.
  const feed = deps.feed === false || !feedOf ? undefined : new FeedListener({
    url: config.amqpUrls,
    name: `order-${Deno.pid}-feed`,
    feed: feedOf,
    log,
    onEvent: (event) => heard(event),
    onReady: () => {
      hub.publish({ kind: "resync" });
      stock.refreshSoon();
    },
  });

  let feedState: "idle" | "listening" | "stopped" = "idle";
  const listen = () => {
    if (feedState !== "idle") return;
    feedState = "listening";
    feed?.start();
  };

  const freshStock = () => {
    if (stock.age > STOCK_FRESH_MS) stock.refresh();
  };

  const routes: Route[] = [
    {
      method: "GET",
      path: "/menu",
      handler: async () => {
        if (stock.age > STOCK_FRESH_MS) await stock.refresh();
        return json(stock.current);
      },
    },
    {
      method: "GET",
      path: "/events",
      handler: (_req, _params, url, caller) => {
        const student = studentOf(url.searchParams, caller);
        listen();
        return streams.open((send) => {
          const sendOrders = () => {
            if (!student) return;
            orders.latest(STUDENT_ORDERS, student).then(
              (latest) => send("orders", latest.map(viewOfOrder)),
              (err) => log.warn("cannot list a student's orders", { error: errorText(err) }),
            );
          };
          send("menu", stock.current);
          sendOrders();
          freshStock();
          return hub.subscribe((update) => {
            if (update.kind === "menu") send("menu", update.menu);
            else if (update.kind === "resync") sendOrders();
            else if (update.kind === "order" && update.order.student_id === student) {
              send("order", update.order);
            }
          });
        }, { endsAt: caller?.expiresAt, student });
      },
    },
    {
      method: "GET",
      path: "/board/events",
      // Every student's orders, and the queue depths of the dead-letter queues: staff only.
      access: "staff",
      handler: (_req, _params, _url, caller) => {
        listen();
        return streams.open((send) => {
          const unsubscribe = hub.subscribe((update) => {
            if (update.kind === "board") send("board", update.board);
          });
          const release = board.watch();
          freshStock();
          // Never fails: a board that cannot be built is logged and tried again with backoff.
          board.refresh();
          return () => {
            unsubscribe();
            release();
          };
        }, { endsAt: caller?.expiresAt });
      },
    },
  ];

  return {
    routes,
    heard,
    orderPlaced(order) {
      if (streams.size === 0) return;
      hub.publish({ kind: "order", order: viewOfOrder(order) });
    },
    orderChanged(order) {
      hub.publish({ kind: "order", order: viewOfOrder(order) });
      if (order.status === "CANCELLED") stock.refreshSoon();
    },
    ordersChanged() {
      board.refreshSoon();
    },
    start() {
      stock.refresh();
    },
    async stop() {
      feedState = "stopped";
      streams.closeAll();
      board.stop();
      stock.stop();
      await feed?.close();
    },
  };
}

/**
 * The `student_id` a stream is for, or undefined for the menu alone. A student's token allows
 * only their own stream, the default when the query names none; staff may follow anyone's.
 */
function studentOf(params: URLSearchParams, caller?: Caller): string | undefined {
  const student = params.get("student_id")?.trim();
  if (caller?.role === "student") {
    if (student && student !== caller.sub) throw notYours(caller);
    return caller.sub;
  }
  if (!student) return undefined;
  if (student.length > 100) {
    const message = "student_id must be at most 100 characters";
    throw new HttpError(400, `Invalid student_id: ${message}`, [{ field: "student_id", message }]);
  }
  return student;
}

/** 403 for a student asking for another student's orders. */
export function notYours(caller: Caller): Error {
  return forbidden(
    "student_id",
    `student_id must be your own (${caller.sub}): a student token sees only its own orders`,
  );
}
