/**
 * The in-process hub of live updates: whatever changes an order, the menu or the queues is
 * published here once, and every open event stream of this replica hears it.
 * @module
 */
import type { Board } from "./board.ts";
import type { Menu } from "./stock_view.ts";
import type { OrderView } from "../order_view.ts";

/** Something the pages show changed. */
export type LiveUpdate =
  /** An order has a new status (from this replica or, through the feed, any other). */
  | { kind: "order"; order: OrderView }
  /** Stock levels changed, or inventory became reachable or unreachable. */
  | { kind: "menu"; menu: Menu }
  /** The kitchen board was worked out again. */
  | { kind: "board"; board: Board }
  /**
   * Updates may have been missed (the feed reconnected): listeners reload what they show from
   * the store.
   */
  | { kind: "resync" };

/** Fans updates out to listeners. */
export class LiveHub {
  #listeners = new Set<(update: LiveUpdate) => void>();

  /** Calls `listener` with every later update; returns what unsubscribes it. */
  subscribe(listener: (update: LiveUpdate) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Hands `update` to every listener; one that throws does not keep it from the others. */
  publish(update: LiveUpdate): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(update);
      } catch {
        // a stream that broke is ended by its own cancel
      }
    }
  }
}
