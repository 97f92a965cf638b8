/**
 * Group commit for `POST /order`: the orders that arrive in the same turn of the event loop are
 * stored in one transaction, and each request is answered only after that commit.
 * @module
 */
import type { NewOrder, Placement, SyncOrderStore } from "./order_store.ts";

interface Waiting {
  order: NewOrder;
  resolve(placement: Placement): void;
  reject(err: unknown): void;
}

/** Takes orders one by one and commits them in groups. */
export class OrderIntake {
  #waiting: Waiting[] = [];

  /** @param orders where orders are stored (their events wake the outbox relay) */
  constructor(private readonly orders: SyncOrderStore) {}

  /**
   * Stores an order (or finds the one its idempotency key made); resolves once it is committed.
   * Two requests with the same key in one group are settled in arrival order, like two groups.
   */
  place(order: NewOrder): Promise<Placement> {
    return new Promise((resolve, reject) => {
      if (this.#waiting.length === 0) queueMicrotask(() => this.#commit());
      this.#waiting.push({ order, resolve, reject });
    });
  }

  #commit(): void {
    const group = this.#waiting;
    this.#waiting = [];
    let placed: Placement[];
    try {
      placed = this.orders.placeAll(group.map((w) => w.order));
    } catch (err) {
      for (const w of group) w.reject(err);
      return;
    }
    group.forEach((w, i) => w.resolve(placed[i]));
  }
}
