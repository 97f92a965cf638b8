/**
 * Acknowledges a channel's deliveries in as few frames as possible: the settled deliveries at
 * the head of the window (oldest first) are acknowledged together with one "multiple" ack, so
 * a batch of a hundred costs the broker one frame instead of a hundred. A delivery still being
 * handled holds back the acks of those behind it, never the other way round.
 * @module
 */

type State = "pending" | "acked" | "rejected";

interface Slot<M> {
  message: M;
  state: State;
}

/** How a tracked delivery is settled. */
export interface Settlement {
  /** Marks it handled; the ack goes out with the next multiple ack. */
  ack(): void;
  /** Marks it rejected; call after the reject frame went out, which settles it on its own. */
  rejected(): void;
}

/** The unsettled deliveries of one channel, in delivery order. */
export class AckWindow<M> {
  #slots: Slot<M>[] = [];
  #head = 0;
  #flushScheduled = false;

  /**
   * An empty window.
   * @param ackUpTo sends one ack covering `message` and every earlier unsettled delivery
   */
  constructor(private readonly ackUpTo: (message: M) => void) {}

  /** Registers a delivery as it arrives, in delivery order. */
  track(message: M): Settlement {
    const slot: Slot<M> = { message, state: "pending" };
    this.#slots.push(slot);
    const settle = (state: State) => {
      if (slot.state !== "pending") return;
      slot.state = state;
      this.#scheduleFlush();
    };
    return { ack: () => settle("acked"), rejected: () => settle("rejected") };
  }

  /** Number of tracked deliveries the window has not yet passed. */
  get unsettled(): number {
    return this.#slots.length - this.#head;
  }

  /** Sends one ack for the longest settled run at the head of the window. */
  flush(): void {
    let lastAcked: Slot<M> | undefined;
    while (this.#head < this.#slots.length && this.#slots[this.#head].state !== "pending") {
      const slot = this.#slots[this.#head++];
      // A multiple ack must name a delivery the broker still holds: never a rejected one.
      if (slot.state === "acked") lastAcked = slot;
    }
    if (this.#head > 1024 && this.#head * 2 > this.#slots.length) {
      this.#slots = this.#slots.slice(this.#head);
      this.#head = 0;
    }
    if (lastAcked) this.ackUpTo(lastAcked.message);
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    // Deliveries settled in the same turn of the event loop go out as one frame.
    queueMicrotask(() => {
      this.#flushScheduled = false;
      this.flush();
    });
  }
}
