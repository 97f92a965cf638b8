/**
 * Group commit for `POST /order`: the orders that arrive while the previous group is being
 * committed are stored together in the next transaction, at most {@linkcode MAX_GROUP} at a
 * time, and each request is answered only after its commit.
 * @module
 */
import type { OrderMetrics } from "./order_metrics.ts";
import type { NewOrder, Placement } from "./order.ts";
import type { OrderStore } from "./order_store.ts";

/**
 * Most orders committed in one transaction. A database that paused lets thousands pile up, and
 * one group of them all would not do: its insert alone takes 7 parameters an order, and a
 * PostgreSQL statement carries at most 65,534 (some 9,000 orders), past which every order of
 * the group fails; its rows, events and statement are built at once in the service's bounded
 * heap. 500 orders are well inside both, and still one commit (one flush) for 500 answers.
 */
export const MAX_GROUP = 500;

interface Waiting {
  order: NewOrder;
  resolve(placement: Placement): void;
  reject(err: unknown): void;
}

/** Takes orders one by one and commits them in groups. */
export class OrderIntake {
  #waiting: Waiting[] = [];
  #committing = false;
  #inCommit = 0;

  /**
   * An intake with no request waiting.
   * @param orders where orders are stored (their events wake the outbox relay)
   * @param counts hears how many new orders each commit stored
   */
  constructor(
    private readonly orders: OrderStore,
    private readonly counts?: Pick<OrderMetrics, "placed">,
  ) {}

  /** Orders received and not answered yet: waiting for a group, or in the group committing. */
  get pending(): number {
    return this.#waiting.length + this.#inCommit;
  }

  /**
   * Stores an order (or finds the one its idempotency key made); resolves once it is committed.
   * Two requests with the same key in one group are settled in arrival order, like two groups.
   */
  place(order: NewOrder): Promise<Placement> {
    return new Promise((resolve, reject) => {
      // The first order to wait starts a group at the end of this turn, unless a commit runs:
      // that one starts the next group when it is done.
      if (this.#waiting.length === 0 && !this.#committing) queueMicrotask(() => this.#commit());
      this.#waiting.push({ order, resolve, reject });
    });
  }

  async #commit(): Promise<void> {
    // The oldest first; the rest wait for the next group, which starts as this one ends.
    const group = this.#waiting.splice(0, MAX_GROUP);
    if (group.length === 0) return;
    this.#committing = true;
    this.#inCommit = group.length;
    try {
      const placed = await this.orders.placeAll(group.map((w) => w.order));
      const fresh = placed.filter((p) => p.kind === "placed").length;
      if (fresh > 0) this.counts?.placed(fresh);
      group.forEach((w, i) => w.resolve(placed[i]));
    } catch (err) {
      for (const w of group) w.reject(err);
    } finally {
      this.#committing = false;
      this.#inCommit = 0;
      if (this.#waiting.length > 0) queueMicrotask(() => this.#commit());
    }
  }
}
