/**
 * The ledger check the suites and the benchmark share: every order decided once, stock adds up
 * per item, one notification each with the order's outcome, nothing left dead-lettered.
 * @module
 */
import assert from "node:assert/strict";
import { dlqOf, WORK_QUEUES } from "@campus/shared/topology";
import {
  listNotifications,
  listOrders,
  type NotificationView,
  type OrderView,
  stockLevels,
} from "./client.ts";
import type { Stack } from "./stack.ts";

/** The verdict of {@linkcode checkLedger}. */
export interface Ledger {
  /** Orders checked. */
  accepted: number;
  /** Checked orders that reached `RESERVED` or `FAILED`. */
  final: number;
  /** Checked orders missing from the order service or still `PLACED` at the end. */
  lost: number;
  /** Checked orders that reached `RESERVED`. */
  reserved: number;
  /** Checked orders that reached `FAILED`. */
  failed: number;
  /** Sum of the quantities of the `RESERVED` orders. */
  reserved_qty: number;
  /** How much stock went down, over every item. */
  stock_taken: number;
  /** Stock taken beyond the reserved quantities: what double reservations would cost. */
  double_reserved: number;
  /** `stock_taken - reserved_qty`; anything but 0 means the ledgers disagree. */
  stock_unaccounted: number;
  /** Checked orders without a notification. */
  notifications_missing: number;
  /** Notifications beyond the first of an order. */
  notifications_duplicate: number;
  /** Notifications whose outcome is not the order's final status. */
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

/**
 * Compares the ledgers of the three services. Waits (up to `timeoutMs`) until every order is
 * final and notified, since the notification service may still be catching up; then judges what
 * it sees. The stock of each item must have gone down by exactly the quantities reserved.
 */
export async function checkLedger(stack: Stack, scope: LedgerScope): Promise<Ledger> {
  const { stockBefore, orderIds, timeoutMs = 60_000 } = scope;
  const deadline = performance.now() + timeoutMs;
  let orders: Map<string, OrderView>;
  let ids: string[];
  let notifications: NotificationView[];
  while (true) {
    orders = new Map((await listOrders(stack)).map((o) => [o.order_id, o]));
    ids = orderIds ? [...orderIds] : [...orders.keys()];
    notifications = await listNotifications(stack);
    const noticed = new Set(notifications.map((n) => n.order_id));
    const settled = ids.every((id) => isFinal(orders.get(id)) && noticed.has(id));
    if (settled || performance.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  const stockAfter = await stockLevels(stack);

  let final = 0;
  let reserved = 0;
  let failed = 0;
  let reservedQty = 0;
  const reservedByItem: Record<string, number> = {};
  for (const id of ids) {
    const order = orders.get(id);
    if (order?.status === "RESERVED") {
      reserved++;
      reservedQty += order.qty;
      reservedByItem[order.item] = (reservedByItem[order.item] ?? 0) + order.qty;
    } else if (order?.status === "FAILED") {
      failed++;
    } else continue;
    final++;
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
  const missing = ids.length - perOrder.size;
  const duplicate = [...perOrder.values()].reduce((sum, list) => sum + list.length - 1, 0);
  const wrongOutcome =
    [...perOrder].filter(([id, list]) => list.some((n) => n.outcome !== orders.get(id)?.status))
      .length;
  const lost = ids.length - final;
  const unaccounted = stockTaken - reservedQty;

  if (lost) {
    const examples = ids.filter((id) => !isFinal(orders.get(id))).slice(0, 3).join(", ");
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
  if (missing) problems.push(`${missing} orders have no notification`);
  if (duplicate) problems.push(`${duplicate} notifications repeat one already sent`);
  if (wrongOutcome) problems.push(`${wrongOutcome} orders were told another outcome`);
  return {
    accepted: ids.length,
    final,
    lost,
    reserved,
    failed,
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

function isFinal(order: OrderView | undefined): boolean {
  return order?.status === "RESERVED" || order?.status === "FAILED";
}
