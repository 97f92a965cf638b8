/** HTTP calls the suites make against a stack, with the answers typed. */
import type { ServiceName, Stack } from "./stack.ts";
import { waitFor } from "./poll.ts";

/** An order as `GET /orders/{id}` returns it. */
export interface OrderView {
  /** The order's id, a UUID. */
  order_id: string;
  /** The menu item ordered. */
  item: string;
  /** How many of the item. */
  qty: number;
  /** Who ordered. */
  student_id: string;
  /** `PLACED` until inventory answers, then `RESERVED` or `FAILED`. */
  status: "PLACED" | "RESERVED" | "FAILED";
  /** Why the order failed, when it did. */
  reason?: string;
  /** When the order was placed (ISO 8601). */
  created_at: string;
  /** When the status last changed (ISO 8601). */
  updated_at: string;
}

/** A notification as `GET /notifications` returns it. */
export interface NotificationView {
  order_id: string;
  student_id: string;
  /** The status the student was told of. */
  outcome: "RESERVED" | "FAILED" | "CANCELLED" | "READY" | "EXPIRED";
  message: string;
  sent_at: string;
}

/** Sends `POST /order` with a raw body; returns status and parsed answer. */
export async function postOrder(
  stack: Stack,
  body: unknown,
  init: RequestInit = {},
  replica = 0,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(stack.url("order", "/order", replica), {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
    ...init,
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : {} };
}

/** Places an order that must be accepted (through order replica `replica`); returns it. */
export async function placeOrder(
  stack: Stack,
  order: { item: string; qty: number; student_id: string },
  replica = 0,
): Promise<OrderView> {
  const { status, body } = await postOrder(stack, order, {}, replica);
  if (status !== 201) throw new Error(`POST /order answered ${status}: ${JSON.stringify(body)}`);
  return body as unknown as OrderView;
}

/** GETs a JSON document from a service. */
export async function getJson<T>(url: string): Promise<{ status: number; body: T }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.json() as T };
}

/** Waits until an order has a final status and returns it. */
export async function finalOrder(
  stack: Stack,
  orderId: string,
  timeoutMs = 20_000,
): Promise<OrderView> {
  return await waitFor(async () => {
    const { status, body } = await getJson<OrderView>(stack.url("order", `/orders/${orderId}`));
    return status === 200 && body.status !== "PLACED" ? body : undefined;
  }, { timeoutMs, what: `order ${orderId} to become RESERVED or FAILED` });
}

/** All orders. */
export async function listOrders(stack: Stack): Promise<OrderView[]> {
  return (await getJson<OrderView[]>(stack.url("order", "/orders"))).body;
}

/** Notifications, optionally for one order. */
export async function listNotifications(
  stack: Stack,
  orderId?: string,
): Promise<NotificationView[]> {
  const query = orderId ? `?order_id=${encodeURIComponent(orderId)}` : "";
  return (await getJson<NotificationView[]>(stack.url("notification", `/notifications${query}`)))
    .body;
}

/** Stock levels by item. */
export async function stockLevels(stack: Stack): Promise<Record<string, number>> {
  const { body } = await getJson<{ item: string; quantity: number }[]>(
    stack.url("inventory", "/inventory"),
  );
  return Object.fromEntries(body.map((s) => [s.item, s.quantity]));
}

/** What `GET /ready` answered. */
export interface Readiness {
  status: number;
  body: {
    status: string;
    broker: string;
    outbox_pending: number;
    /** "stalled" when the oldest outbox row waited too long while the broker was connected. */
    outbox?: string;
    /** "stalled" while database work has waited longer than `DB_STALL_MS`. */
    database?: string;
    error?: string;
  };
}

/** `GET /ready` of a service. */
export async function readiness(
  stack: Stack,
  service: ServiceName,
  replica = 0,
): Promise<Readiness> {
  return await getJson<Readiness["body"]>(stack.url(service, "/ready", replica));
}

/** Waits until a service's `/ready` answers 200 with an empty outbox, and returns that answer. */
export async function drained(stack: Stack, service: ServiceName): Promise<Readiness> {
  return await waitFor(async () => {
    const r = await readiness(stack, service);
    return r.status === 200 && r.body.outbox_pending === 0 ? r : undefined;
  }, { what: `${service} /ready to answer 200 with an empty outbox` });
}

/** An order to place: what `POST /order` takes. */
export type OrderRequest = { item: string; qty: number; student_id: string };

/**
 * A reproducible mix of `count` orders over the items of `menu` (every `stride`-th item in
 * turn), quantities 1 to 3, student ids `<prefix><n>`.
 */
export function orderMix(
  menu: Record<string, number>,
  count: number,
  prefix: string,
  stride = 7,
): OrderRequest[] {
  const items = Object.keys(menu);
  return Array.from({ length: count }, (_, i) => ({
    item: items[(i * stride) % items.length],
    qty: 1 + (i % 3),
    student_id: `${prefix}${i}`,
  }));
}

/**
 * Places every order, `concurrency` at a time, each one required to answer 201, spread over
 * the order replicas in turn; `onPlaced` hears how many were accepted so far (a chaos loop can
 * act at a given point of the stream).
 */
export async function placeOrders(
  stack: Stack,
  requests: readonly OrderRequest[],
  { concurrency = 8, onPlaced }: { concurrency?: number; onPlaced?: (count: number) => void } = {},
): Promise<OrderView[]> {
  const placed: OrderView[] = new Array(requests.length);
  const replicas = stack.replicasOf("order");
  let next = 0;
  let count = 0;
  const worker = async () => {
    while (next < requests.length) {
      const index = next++;
      placed[index] = await placeOrder(stack, requests[index], index % replicas);
      onPlaced?.(++count);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, requests.length) }, worker));
  return placed;
}

/** Waits until every order in `orderIds` has a final status; returns them by id. */
export async function finalOrders(
  stack: Stack,
  orderIds: readonly string[],
  timeoutMs = 60_000,
): Promise<Map<string, OrderView>> {
  const wanted = new Set(orderIds);
  let pending: string[] = [...wanted];
  try {
    return await waitFor(async () => {
      const orders = (await listOrders(stack)).filter((o) => wanted.has(o.order_id));
      const known = new Set(orders.map((o) => o.order_id));
      pending = [
        ...orders.filter((o) => o.status === "PLACED").map((o) => o.order_id),
        ...[...wanted].filter((id) => !known.has(id)),
      ];
      return pending.length === 0 ? new Map(orders.map((o) => [o.order_id, o])) : undefined;
    }, { timeoutMs, what: `${wanted.size} orders to become RESERVED or FAILED` });
  } catch (err) {
    throw new Error(
      `${(err as Error).message}; ${pending.length} still not final: ${
        pending.slice(0, 5).join(", ")
      }`,
    );
  }
}
