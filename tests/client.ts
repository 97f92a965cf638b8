/** HTTP calls the suites make against a stack, with the answers typed. */
import type { ServiceName, Stack } from "./stack.ts";
import { waitFor } from "./poll.ts";

/** Every status an order can have. */
export type OrderStatus =
  | "PLACED"
  | "RESERVED"
  | "FAILED"
  | "CANCELLED"
  | "PREPARING"
  | "READY"
  | "COLLECTED"
  | "EXPIRED";

/** One line of an order: an item and how many of it. */
export interface LineView {
  item: string;
  qty: number;
}

/** An order as `GET /orders/{id}` returns it. */
export interface OrderView {
  /** The order's id, a UUID. */
  order_id: string;
  /**
   * The menu item of a one-line order. A cart of several lines has none; the suites that read
   * it place one-line orders.
   */
  item: string;
  /** How many of the item, for a one-line order (see `item`). */
  qty: number;
  /** Every line of the order, in the menu's spelling once inventory answered. */
  lines: LineView[];
  /** Who ordered. */
  student_id: string;
  /** `PLACED` until inventory answers, then `RESERVED` or `FAILED`, then the kitchen's moves. */
  status: OrderStatus;
  /** Why the order failed or was cancelled, when it was. */
  reason?: string;
  /** When the order was placed (ISO 8601). */
  created_at: string;
  /** When the status last changed (ISO 8601). */
  updated_at: string;
  /** When inventory reserved it, once it did. */
  reserved_at?: string;
  /** When it became `READY`, once it did. */
  ready_at?: string;
  /** Who cancelled it, once cancelled. */
  cancelled_by?: "student" | "staff";
  /** When inventory said a cancelled order's stock is back (or that it took none). */
  stock_released_at?: string;
}

/** A notification as `GET /notifications` returns it. */
export interface NotificationView {
  /** The order it is about. */
  order_id: string;
  /** The student it was sent to. */
  student_id: string;
  /** The status the student was told of. */
  outcome: "RESERVED" | "FAILED" | "CANCELLED" | "READY" | "EXPIRED";
  /** The text the student got. */
  message: string;
  /** When it was sent (ISO 8601). */
  sent_at: string;
}

/** The lines of an order: its `lines`, or its `item` and `qty` from before carts. */
export function orderLines(order: Pick<OrderView, "item" | "qty"> & { lines?: LineView[] }) {
  return order.lines ?? [{ item: order.item, qty: order.qty }];
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

/** A cart to place: what `POST /order` takes with `lines`. */
export type CartRequest = { student_id: string; lines: LineView[] };

/** Places a cart that must be accepted (through order replica `replica`); returns it. */
export async function placeCart(
  stack: Stack,
  cart: CartRequest,
  replica = 0,
): Promise<OrderView> {
  const { status, body } = await postOrder(stack, cart, {}, replica);
  if (status !== 201) throw new Error(`POST /order answered ${status}: ${JSON.stringify(body)}`);
  return body as unknown as OrderView;
}

/** An answer of a move (`/cancel`, `/status`): the order, or an error with the current status. */
export interface MoveAnswer {
  status: number;
  body: OrderView & { error?: string };
}

/** `POST /orders/{id}/cancel` (through order replica `replica`), with an optional body. */
export function cancelOrder(
  stack: Stack,
  orderId: string,
  { body, replica = 0, headers = {} }: {
    body?: { reason?: string };
    replica?: number;
    headers?: Record<string, string>;
  } = {},
): Promise<MoveAnswer> {
  return postMove(stack.url("order", `/orders/${orderId}/cancel`, replica), body, headers);
}

/** `POST /orders/{id}/status` with `{"status": …}` (through order replica `replica`). */
export function moveOrder(
  stack: Stack,
  orderId: string,
  status: "PREPARING" | "READY" | "COLLECTED",
  { replica = 0, headers = {} }: { replica?: number; headers?: Record<string, string> } = {},
): Promise<MoveAnswer> {
  return postMove(stack.url("order", `/orders/${orderId}/status`, replica), { status }, headers);
}

async function postMove(
  url: string,
  body: unknown,
  headers: Record<string, string>,
): Promise<MoveAnswer> {
  const res = await fetch(url, {
    method: "POST",
    headers: body === undefined ? headers : { "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: MoveAnswer["body"];
  try {
    parsed = text ? JSON.parse(text) : {};
  } catch {
    throw new Error(`POST ${url} answered ${res.status} with a body that is not JSON: ${text}`);
  }
  return { status: res.status, body: parsed };
}

/** The order as `GET /orders/{id}` returns it now (through order replica `replica`). */
export async function getOrder(stack: Stack, orderId: string, replica = 0): Promise<OrderView> {
  const { status, body } = await getJson<OrderView>(
    stack.url("order", `/orders/${orderId}`, replica),
  );
  if (status !== 200) throw new Error(`GET /orders/${orderId} answered ${status}`);
  return body;
}

/** GETs a JSON document from a service. */
export async function getJson<T>(url: string): Promise<{ status: number; body: T }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.json() as T };
}

/**
 * A service replica's listing (`/orders`, `/notifications`, `/inventory`); anything but a 200
 * with an array fails, saying what came instead.
 */
export async function listFrom<T>(
  stack: Stack,
  service: ServiceName,
  replica: number,
  path: string,
): Promise<T[]> {
  const { status, body } = await getJson<T[]>(stack.url(service, path, replica));
  if (status !== 200 || !Array.isArray(body)) {
    throw new Error(
      `GET ${path} of ${service} replica ${replica} answered ${status}: ${JSON.stringify(body)}`,
    );
  }
  return body;
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
  /** 200 when ready, 503 when not. */
  status: number;
  /** The answer's JSON body. */
  body: {
    /** `"ready"` or `"not ready"`. */
    status: string;
    /** `"connected"`, `"disconnected"` or `"blocked"`. */
    broker: string;
    /** Events written to the outbox and not yet published. */
    outbox_pending: number;
    /** "stalled" when the oldest outbox row waited too long while the broker was connected. */
    outbox?: string;
    /** "stalled" while database work has waited longer than `DB_STALL_MS`. */
    database?: string;
    /** Why it is not ready, when it is not. */
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
