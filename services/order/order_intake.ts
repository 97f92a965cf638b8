/**
 * Group commit for `POST /order`: the orders that arrive in the same turn of the event loop are
 * stored in one transaction, and each request is answered only after that commit.
 * @module
 */
import type { PlaceOrderRequest } from "@campus/shared/events";
import type { Order, OrderStore } from "./order_store.ts";

interface Waiting {
  request: PlaceOrderRequest;
  resolve(order: Order): void;
  reject(err: unknown): void;
}

/** Takes orders one by one and commits them in groups. */
export class OrderIntake {
  #waiting: Waiting[] = [];

  /** @param orders where orders are stored (their events wake the outbox relay) */
  constructor(private readonly orders: OrderStore) {}

  /** Stores an order; resolves once it is committed. */
  place(request: PlaceOrderRequest): Promise<Order> {
    return new Promise((resolve, reject) => {
      if (this.#waiting.length === 0) queueMicrotask(() => this.#commit());
      this.#waiting.push({ request, resolve, reject });
    });
  }

  #commit(): void {
    const group = this.#waiting;
    this.#waiting = [];
    let placed: Order[];
    try {
      placed = this.orders.placeAll(group.map((w) => w.request));
    } catch (err) {
      for (const w of group) w.reject(err);
      return;
    }
    group.forEach((w, i) => w.resolve(placed[i]));
  }
}
