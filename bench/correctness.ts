/** The ledger check after a run: no accepted order lost, none reserved twice, one notice each. */
import type { NotificationView, OrderView } from "../tests/client.ts";
import type { AcceptedOrder } from "./load.ts";

/** The verdict on every order the run placed. */
export interface Correctness {
  accepted: number;
  /** Accepted orders that reached `RESERVED` or `FAILED`. */
  final: number;
  /** Accepted orders missing from the order service or still `PLACED` at the end. */
  lost: number;
  reserved: number;
  failed: number;
  /** Sum of the quantities of the `RESERVED` orders. */
  reserved_qty: number;
  /** How much stock went down over the run. */
  stock_taken: number;
  /** Stock taken beyond the reserved quantities: what double reservations would cost. */
  double_reserved: number;
  /** `stock_taken - reserved_qty`; anything but 0 means the ledgers disagree. */
  stock_unaccounted: number;
  /** Accepted orders without a notification. */
  notifications_missing: number;
  /** Notifications beyond the first of an order. */
  notifications_duplicate: number;
  /** Messages sitting in dead-letter queues at the end. */
  dead_lettered: number;
  ok: boolean;
  /** Each failed check in words. */
  problems: string[];
}

/** Where the check reads the services' state. */
export interface CorrectnessSources {
  orderUrl: string;
  inventoryUrl: string;
  notificationUrl: string;
  /** Stock by item before the run. */
  stockBefore: Record<string, number>;
  /** Ready messages in each dead-letter queue. */
  deadLettered: () => Promise<number>;
  /** How long to wait for the notification service to catch up. */
  timeoutMs?: number;
}

/** Stock levels by item, from `GET /inventory`. */
export async function stockLevels(inventoryUrl: string): Promise<Record<string, number>> {
  const levels = await getJson<{ item: string; quantity: number }[]>(`${inventoryUrl}/inventory`);
  return Object.fromEntries(levels.map((s) => [s.item, s.quantity]));
}

/**
 * Checks the ledgers of all three services against the orders the run had accepted. Waits
 * (up to `timeoutMs`) for a notification of every accepted order first, since the notification
 * service may still be catching up when the last order became final.
 */
export async function checkCorrectness(
  accepted: readonly AcceptedOrder[],
  sources: CorrectnessSources,
): Promise<Correctness> {
  const { orderUrl, inventoryUrl, notificationUrl, stockBefore, timeoutMs = 60_000 } = sources;
  const ids = new Set(accepted.map((o) => o.order_id));
  const deadline = performance.now() + timeoutMs;
  let notifications: NotificationView[];
  while (true) {
    notifications = await getJson<NotificationView[]>(`${notificationUrl}/notifications`);
    const noticed = new Set(notifications.map((n) => n.order_id).filter((id) => ids.has(id)));
    if (noticed.size >= ids.size || performance.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  const orders = new Map(
    (await getJson<OrderView[]>(`${orderUrl}/orders`)).map((o) => [o.order_id, o]),
  );
  const stockAfter = await stockLevels(inventoryUrl);

  let final = 0;
  let reserved = 0;
  let failed = 0;
  let reservedQty = 0;
  for (const { order_id } of accepted) {
    const order = orders.get(order_id);
    if (order?.status === "RESERVED") {
      reserved++;
      reservedQty += order.qty;
    } else if (order?.status === "FAILED") {
      failed++;
    } else continue;
    final++;
  }
  const stockTaken = Object.entries(stockBefore)
    .reduce((sum, [item, before]) => sum + before - (stockAfter[item] ?? 0), 0);

  const perOrder = new Map<string, number>();
  for (const n of notifications) {
    if (ids.has(n.order_id)) perOrder.set(n.order_id, (perOrder.get(n.order_id) ?? 0) + 1);
  }
  const missing = ids.size - perOrder.size;
  const duplicate = [...perOrder.values()].reduce((sum, n) => sum + n - 1, 0);
  const lost = accepted.length - final;
  const unaccounted = stockTaken - reservedQty;
  const deadLettered = await sources.deadLettered();

  const problems: string[] = [];
  if (lost) problems.push(`${lost} of ${accepted.length} accepted orders never became final`);
  if (unaccounted > 0) {
    problems.push(
      `stock went down by ${stockTaken}, ${unaccounted} more than the ${reservedQty} reserved`,
    );
  } else if (unaccounted < 0) {
    problems.push(
      `stock went down by ${stockTaken}, ${-unaccounted} less than the ${reservedQty} reserved`,
    );
  }
  if (missing) problems.push(`${missing} accepted orders have no notification`);
  if (duplicate) problems.push(`${duplicate} notifications repeat one already sent`);
  return {
    accepted: accepted.length,
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
    dead_lettered: deadLettered,
    ok: problems.length === 0,
    problems,
  };
}

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`GET ${url} answered ${res.status}: ${await res.text()}`);
  return await res.json() as T;
}
