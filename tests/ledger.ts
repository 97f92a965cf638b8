/**
 * The ledger check the suites and the benchmark share: every order decided once, stock adds up
 * per item over every line of every order that keeps stock, a cancelled order's stock given
 * back, one notification per order and status told, nothing left dead-lettered.
 * @module
 */
import assert from "node:assert/strict";
import { dlqOf, WORK_QUEUES } from "@campus/shared/topology";
import {
  listFrom,
  type NotificationView,
  orderLines,
  type OrderStatus,
  type OrderView,
  stockLevels,
} from "./client.ts";
import type { Stack } from "./stack.ts";

/** The verdict of {@linkcode checkLedger}. */
export interface Ledger {
  /** Orders checked. */
  accepted: number;
  /** Checked orders whose saga ended: decided, and a cancelled one's stock given back. */
  final: number;
  /** Checked orders missing, still `PLACED`, or cancelled with their stock not yet released. */
  lost: number;
  /** Checked orders that hold stock: `RESERVED` and every kitchen status after it. */
  reserved: number;
  /** Checked orders that reached `FAILED`. */
  failed: number;
  /** Checked orders that reached `CANCELLED`, their stock given back. */
  cancelled: number;
  /** Sum of the quantities of every line of the orders that hold stock. */
  reserved_qty: number;
  /** How much stock went down, over every item. */
  stock_taken: number;
  /** Stock taken beyond the reserved quantities: what double reservations would cost. */
  double_reserved: number;
  /** `stock_taken - reserved_qty`; anything but 0 means the ledgers disagree. */
  stock_unaccounted: number;
  /** Checked orders without a notification of the status they last told the student of. */
  notifications_missing: number;
  /** Notifications beyond the first of an order and outcome. */
  notifications_duplicate: number;
  /** Orders told an outcome their path never went through. */
  notifications_wrong_outcome: number;
  /** Messages sitting in dead-letter queues at the end. */
  dead_lettered: number;
  /** True when no problem was found (dead letters are counted, not judged). */
  ok: boolean;
  /** Each failed check in words. */
  problems: string[];
}

/** What {@linkcode checkLedger} checks. */
export interface LedgerScope {
  /** Stock by item before the orders were placed. */
  stockBefore: Readonly<Record<string, number>>;
  /** Ids of the orders to check; every order the order service knows when undefined. */
  orderIds?: readonly string[];
  /** How long to wait for the orders to become final and their notifications to be recorded. */
  timeoutMs?: number;
}

/** Statuses of an order whose stock stays taken: the food is reserved, cooked or handed out. */
const HOLDS_STOCK: ReadonlySet<OrderStatus> = new Set([
  "RESERVED",
  "PREPARING",
  "READY",
  "COLLECTED",
  "EXPIRED",
]);

/**
 * Compares the ledgers of the three services. Waits (up to `timeoutMs`) until every order is
 * final and notified, since the notification service may still be catching up; then judges what
 * it sees. The stock of each item must have gone down by exactly the quantities held by the
 * orders that keep stock (`RESERVED` and the kitchen's statuses), over every line of a cart; a
 * cancelled order counts as final only once inventory said its stock is back.
 */
export async function checkLedger(stack: Stack, scope: LedgerScope): Promise<Ledger> {
  const { stockBefore, orderIds, timeoutMs = 60_000 } = scope;
  const deadline = performance.now() + timeoutMs;
  let orders: Map<string, OrderView>;
  let ids: string[];
  let notifications: NotificationView[];
  while (true) {
    orders = new Map((await listFrom<OrderView>(stack, "order", 0, "/orders")).map((o) => [
      o.order_id,
      o,
    ]));
    ids = orderIds ? [...orderIds] : [...orders.keys()];
    notifications = await listFrom<NotificationView>(stack, "notification", 0, "/notifications");
    const told = new Set(notifications.map((n) => `${n.order_id} ${n.outcome}`));
    const settled = ids.every((id) => {
      const order = orders.get(id);
      return isFinal(order) && told.has(`${id} ${lastTold(order)}`);
    });
    if (settled || performance.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  const stockAfter = await stockLevels(stack);

  let final = 0;
  let reserved = 0;
  let failed = 0;
  let cancelled = 0;
  let reservedQty = 0;
  const reservedByItem: Record<string, number> = {};
  for (const id of ids) {
    const order = orders.get(id);
    if (!order || !isFinal(order)) continue;
    final++;
    if (HOLDS_STOCK.has(order.status)) {
      reserved++;
      for (const line of orderLines(order)) {
        reservedQty += line.qty;
        reservedByItem[line.item] = (reservedByItem[line.item] ?? 0) + line.qty;
      }
    } else if (order.status === "FAILED") failed++;
    else if (order.status === "CANCELLED") cancelled++;
  }

  const problems: string[] = [];
  let stockTaken = 0;
  for (const [item, before] of Object.entries(stockBefore)) {
    const after = stockAfter[item] ?? 0;
    const expected = before - (reservedByItem[item] ?? 0);
    stockTaken += before - after;
    if (after !== expected) {
      problems.push(
        `${item}: ${after} left, expected ${expected} (${before} − ${
          reservedByItem[item] ?? 0
        } reserved)`,
      );
    }
  }

  const wanted = new Set(ids);
  const perOrder = new Map<string, NotificationView[]>();
  for (const n of notifications) {
    if (wanted.has(n.order_id)) perOrder.set(n.order_id, [...perOrder.get(n.order_id) ?? [], n]);
  }
  const missing = ids.filter((id) => {
    const order = orders.get(id);
    return !perOrder.get(id)?.some((n) => n.outcome === lastTold(order));
  }).length;
  const duplicate = [...perOrder.values()].reduce(
    (sum, list) => sum + list.length - new Set(list.map((n) => n.outcome)).size,
    0,
  );
  const wrongOutcome = [...perOrder].filter(([id, list]) => {
    const order = orders.get(id);
    return list.some((n) => !mayHaveTold(order, n.outcome));
  }).length;
  const lost = ids.length - final;
  const unaccounted = stockTaken - reservedQty;

  if (lost) {
    const examples = ids.filter((id) => !isFinal(orders.get(id))).slice(0, 3).map((id) =>
      `${id} ${orders.get(id)?.status ?? "missing"}`
    ).join(", ");
    problems.unshift(`${lost} of ${ids.length} orders never became final (${examples})`);
  }
  if (unaccounted > 0) {
    problems.push(
      `stock went down by ${stockTaken}, ${unaccounted} more than the ${reservedQty} reserved`,
    );
  } else if (unaccounted < 0) {
    problems.push(
      `stock went down by ${stockTaken}, ${-unaccounted} less than the ${reservedQty} reserved`,
    );
  }
  if (missing) problems.push(`${missing} orders have no notification of their status`);
  if (duplicate) problems.push(`${duplicate} notifications repeat one already sent`);
  if (wrongOutcome) problems.push(`${wrongOutcome} orders were told another outcome`);
  return {
    accepted: ids.length,
    final,
    lost,
    reserved,
    failed,
    cancelled,
    reserved_qty: reservedQty,
    stock_taken: stockTaken,
    double_reserved: Math.max(0, unaccounted),
    stock_unaccounted: unaccounted,
    notifications_missing: missing,
    notifications_duplicate: duplicate,
    notifications_wrong_outcome: wrongOutcome,
    dead_lettered: await deadLettered(stack),
    ok: problems.length === 0,
    problems,
  };
}

/**
 * The suites' form of {@linkcode checkLedger} over every order the stack knows, starting from
 * `menu`: fails naming each problem, and when anything is left in a dead-letter queue.
 */
export async function assertLedger(
  stack: Stack,
  menu: Readonly<Record<string, number>>,
  { timeoutMs }: { timeoutMs?: number } = {},
): Promise<Ledger> {
  const ledger = await checkLedger(stack, { stockBefore: menu, timeoutMs });
  assert.deepEqual(ledger.problems, [], `the ledgers disagree: ${ledger.problems.join("; ")}`);
  assert.ok(ledger.accepted > 0, "the ledger had orders to check");
  assert.equal(ledger.dead_lettered, 0, "nothing is left in a dead-letter queue");
  return ledger;
}

/** Ready messages in all the dead-letter queues. */
export async function deadLettered(stack: Stack): Promise<number> {
  let total = 0;
  for (const queue of WORK_QUEUES) total += await stack.queueDepth(dlqOf(queue.name));
  return total;
}

/** Decided, and, when cancelled, with inventory's word that its stock is back. */
function isFinal(order: OrderView | undefined): order is OrderView {
  if (!order || order.status === "PLACED") return false;
  return order.status !== "CANCELLED" || order.stock_released_at !== undefined;
}

/** The last status of an order its student must have been told of. */
function lastTold(order: OrderView | undefined): NotificationView["outcome"] | undefined {
  switch (order?.status) {
    case "RESERVED":
    case "PREPARING":
    case "COLLECTED":
      // Recalled from READY to PREPARING, or collected: READY was told, and RESERVED before it.
      return order.ready_at ? "READY" : "RESERVED";
    case "FAILED":
    case "CANCELLED":
    case "READY":
    case "EXPIRED":
      return order.status;
    default:
      return undefined;
  }
}

/**
 * Whether a student may have been told `outcome` of `order`: a status on its way to the one it
 * has. A cancelled order may have been reserved first, whether or not the order service applied
 * the reservation before the cancel.
 */
function mayHaveTold(order: OrderView | undefined, outcome: NotificationView["outcome"]): boolean {
  if (!order) return false;
  switch (outcome) {
    case "RESERVED":
      return HOLDS_STOCK.has(order.status) || order.status === "CANCELLED";
    case "READY":
      return order.ready_at !== undefined || order.status === "READY" ||
        order.status === "EXPIRED";
    default:
      return outcome === order.status;
  }
}
