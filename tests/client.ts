/** HTTP calls the suites make against a stack, with the answers typed. */
import type { Stack } from "./stack.ts";
import { waitFor } from "./poll.ts";

/** An order as `GET /orders/{id}` returns it. */
export interface OrderView {
  order_id: string;
  item: string;
  qty: number;
  student_id: string;
  status: "PLACED" | "RESERVED" | "FAILED";
  reason?: string;
  created_at: string;
  updated_at: string;
}

/** A notification as `GET /notifications` returns it. */
export interface NotificationView {
  order_id: string;
  student_id: string;
  outcome: "RESERVED" | "FAILED";
  message: string;
  sent_at: string;
}

/** Sends `POST /order` with a raw body; returns status and parsed answer. */
export async function postOrder(
  stack: Stack,
  body: unknown,
  init: RequestInit = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(stack.url("order", "/order"), {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
    ...init,
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : {} };
}

/** Places an order that must be accepted; returns it. */
export async function placeOrder(
  stack: Stack,
  order: { item: string; qty: number; student_id: string },
): Promise<OrderView> {
  const { status, body } = await postOrder(stack, order);
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
