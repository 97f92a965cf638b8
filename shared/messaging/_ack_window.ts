/**
 * Acknowledges a channel's deliveries in as few frames as possible: the settled deliveries at
 * the head of the window (oldest first) are acknowledged together with one "multiple" ack, so
 * a batch of a hundred costs the broker one frame instead of a hundred. A delivery still being
 * handled holds back the acks of those behind it, never the other way round, and only briefly:
 * those still held back after {@linkcode ACK_BEHIND_DELAY_MS} are acknowledged one by one, so a
 * delivery that takes long (waiting for a locked row) cannot use up the prefetch and stall the
 * channel.
 * @module
 */

/** `sent`: acknowledged on its own while an earlier delivery was still being handled. */
type State = "pending" | "acked" | "rejected" | "sent";

/** A tracked delivery's place in the window; it is also how the delivery is settled. */
class Slot<M> implements Settlement {
  state: State = "pending";

  constructor(
    readonly message: M,
    private readonly settle: (slot: Slot<M>, state: State) => void,
  ) {}

  ack(): void {
    this.settle(this, "acked");
  }

  rejected(): void {
    this.settle(this, "rejected");
  }
}

/**
 * How long a handled delivery may wait behind one still being handled before it is
 * acknowledged on its own: far longer than a batch usually takes, so the usual case still
 * goes out as one multiple ack.
 */
export const ACK_BEHIND_DELAY_MS = 250;

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
  /** Slots marked `acked` that the head has not passed yet. */
  #heldBack = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;

  /**
   * An empty window.
   * @param ackUpTo sends one ack covering `message` and every earlier unsettled delivery
   * @param ackOne sends an ack of `message` alone; without it, acks wait for the head
   * @param delayMs how long handled deliveries wait behind the head before `ackOne`
   */
  constructor(
    private readonly ackUpTo: (message: M) => void,
    private readonly ackOne?: (message: M) => void,
    private readonly delayMs: number = ACK_BEHIND_DELAY_MS,
  ) {}

  /** Registers a delivery as it arrives, in delivery order. */
  track(message: M): Settlement {
    // One object per delivery, its methods shared: a window sees every message that arrives.
    const slot = new Slot(message, this.#settle);
    this.#slots.push(slot);
    return slot;
  }

  #settle = (slot: Slot<M>, state: State): void => {
    if (slot.state !== "pending") return;
    slot.state = state;
    if (state === "acked") this.#heldBack++;
    this.#scheduleFlush();
  };

  /** Number of tracked deliveries the window has not yet passed. */
  get unsettled(): number {
    return this.#slots.length - this.#head;
  }

  /** Sends one ack for the longest settled run at the head of the window. */
  flush(): void {
    let lastAcked: Slot<M> | undefined;
    while (this.#head < this.#slots.length && this.#slots[this.#head].state !== "pending") {
      const slot = this.#slots[this.#head++];
      // A multiple ack must name a delivery the broker still holds: never a rejected one, nor
      // one already acknowledged on its own.
      if (slot.state === "acked") {
        lastAcked = slot;
        this.#heldBack--;
      }
    }
    if (this.#head > 1024 && this.#head * 2 > this.#slots.length) {
      this.#slots = this.#slots.slice(this.#head);
      this.#head = 0;
    }
    if (lastAcked) this.ackUpTo(lastAcked.message);
    if (this.#heldBack > 0 && this.ackOne && this.#timer === undefined) {
      const timer = setTimeout(() => this.#ackBehindHead(), this.delayMs);
      // A channel left with a pending delivery must not keep the process alive for this.
      Deno.unrefTimer(timer);
      this.#timer = timer;
    }
  }

  /** Acknowledges one by one the handled deliveries still waiting behind the head. */
  #ackBehindHead(): void {
    this.#timer = undefined;
    this.flush();
    for (let i = this.#head; i < this.#slots.length && this.#heldBack > 0; i++) {
      const slot = this.#slots[i];
      if (slot.state !== "acked") continue;
      slot.state = "sent";
      this.#heldBack--;
      this.ackOne!(slot.message);
    }
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
