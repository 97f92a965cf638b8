/**
 * The inventory service: reserves stock for every line of each `OrderPlaced` (or for none) and
 * announces the result, and gives a cancelled order's stock back once for each `OrderCancelled`;
 * `GET /inventory` lists stock levels (to any valid token while authentication is on: they are
 * not personal, but not for the open internet either).
 * @module
 */
import { decodeEvent, OrderPlaced, parseJson } from "@campus/shared/events";
import { json } from "@campus/shared/http";
import type { Logger } from "@campus/shared/log";
import type { ServiceDefinition, ServiceDeps } from "@campus/shared/service";
import type { OrderItems, Release, Reservation } from "./stock.ts";
import { openStockStore } from "./stock_store.ts";

/** Why a dead-lettered order failed, as the student reads it; its error id follows. */
export const SET_ASIDE_REASON =
  "Inventory could not process this order; it was set aside for staff";

/** Builds the inventory service from its dependencies. */
export async function createInventoryService(
  { config, db, outbox, log }: ServiceDeps,
): Promise<ServiceDefinition<"inventory">> {
  const stock = await openStockStore(db, outbox, config.menu);
  return {
    routes: [{
      method: "GET",
      path: "/inventory",
      handler: async () => json(await stock.levels()),
    }],
    subscriptions: {
      order_placed: {
        // Replicas take the stock rows of a batch in one order: they wait, never deadlock.
        prepareBatch: (messages) =>
          stock.prepareReservations(messages.flatMap(({ body }) => orderItemsOf(body))),
        handle: async ({ body, retries }) => {
          const order = decodeEvent("OrderPlaced", body);
          if (config.testFaults) injectFault(order, retries);
          const reservation = await stock.reserve(order);
          db.afterCommit(() => logDecision(log, reservation));
        },
        // A valid order that could not be processed still gets an outcome: the student is told
        // it failed instead of waiting forever, and the message waits in the DLQ for staff.
        // The student reads the error id; the error itself is for staff, under that id.
        onDeadLetter: async (raw, _reason, errorId) => {
          const order = OrderPlaced.safeParse(parseJson(raw));
          if (!order.success) return;
          const reservation = await stock.setAside(order.data, setAsideReason(errorId));
          logDecision(log, reservation);
        },
      },
      order_cancelled: {
        // A cancel takes the stock rows of its items as a decision does, in the same order.
        prepareBatch: (messages) => stock.lockItems(messages.flatMap(({ body }) => itemsOf(body))),
        handle: async ({ body }) => {
          const cancel = decodeEvent("OrderCancelled", body);
          const release = await stock.cancel(cancel);
          db.afterCommit(() => logRelease(log, cancel.order_id, release));
        },
      },
    },
  };
}

/** The line that says what became of an order's stock, once that is committed. */
function logDecision(log: Logger, reservation: Reservation): void {
  const { order_id, item } = reservation.event;
  const lines = linesText(reservation.event.lines);
  if (reservation.outcome === "CANCELLED") {
    log.info("order cancelled before its decision, nothing taken or announced", { order_id });
  } else if (reservation.duplicate) {
    log.warn("duplicate order, re-announcing its outcome", {
      order_id,
      outcome: reservation.outcome,
    });
  } else if (reservation.outcome === "RESERVED") {
    const { qty, remaining } = reservation.event;
    log.info("stock reserved", { order_id, item, qty, remaining, lines });
  } else {
    log.info("stock refused", { order_id, item, lines, reason: reservation.event.reason });
  }
}

/** The line that says what a cancel gave back, once that is committed. */
function logRelease(log: Logger, order_id: string, release: Release): void {
  if (release.duplicate) {
    log.warn("duplicate cancel, re-announcing its release", { order_id });
  } else if (release.giveBack.length > 0) {
    log.info("stock released", { order_id, lines: linesText(release.giveBack) });
  } else {
    log.info("cancel found nothing reserved", {
      order_id,
      decided_first: release.recordCancelled ? "cancel" : "refusal",
    });
  }
}

/** An order's lines for a log line: `2 x Burger, 1 x Coffee`. */
function linesText(lines: readonly { item: string; qty: number }[]): string {
  return lines.map(({ item, qty }) => `${qty} x ${item}`).join(", ");
}

/**
 * The student's reason for a set-aside order: {@linkcode SET_ASIDE_REASON}, then the error id
 * under which the log and the DLQ keep what went wrong. The error's own text stays out: it may
 * quote a driver's statement or a handler's internals.
 * @example
 * ```ts
 * import { setAsideReason } from "./app.ts";
 * setAsideReason("3f2a9c1e");
 * // "Inventory could not process this order; it was set aside for staff (error 3f2a9c1e)"
 * ```
 */
export function setAsideReason(errorId: string): string {
  return `${SET_ASIDE_REASON} (error ${errorId})`;
}

/**
 * Test-only failures, enabled by `TEST_FAULTS=on`, chosen by the order's student id:
 * `fault:transient:N` fails the first N attempts, `fault:permanent` fails every attempt,
 * `fault:verbose` fails every attempt with a very long error message (as a driver dumping a
 * whole statement would), and `fault:crash` kills the process before the message can be
 * acknowledged.
 */
function injectFault(order: OrderPlaced, retries: number): void {
  const id = order.student_id;
  const transient = /^fault:transient:(\d+)$/.exec(id);
  if (transient && retries < Number(transient[1])) {
    throw new Error(`injected transient fault (attempt ${retries + 1})`);
  }
  if (id === "fault:permanent") throw new Error("injected permanent fault");
  if (id === "fault:verbose") {
    throw new Error(`injected verbose fault: ${"the statement was ".repeat(300)}(end)`);
  }
  if (id === "fault:crash") Deno.exit(70);
}

/** The id and items of an order's body; nothing for a body without an id. */
function orderItemsOf(body: unknown): OrderItems[] {
  const order_id = (body as { order_id?: unknown } | null)?.order_id;
  return typeof order_id === "string" ? [{ order_id, items: itemsOf(body) }] : [];
}

/**
 * The items an order's body names: those of its `lines`, or its classic `item`. What a malformed
 * body names is not locked (its handler dead-letters it).
 */
function itemsOf(body: unknown): string[] {
  const { lines, item } = (body ?? {}) as { lines?: unknown; item?: unknown };
  if (Array.isArray(lines)) {
    return lines.flatMap((line) => {
      const name = (line as { item?: unknown } | null)?.item;
      return typeof name === "string" ? [name] : [];
    });
  }
  return typeof item === "string" ? [item] : [];
}
