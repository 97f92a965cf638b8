/**
 * What happens to a delivery: handled and acknowledged; dead-lettered at once with its reason
 * when it can never succeed; retried after a delay when the failure may pass, a bounded number
 * of times; dead-lettered unseen once it was delivered too often without an ack (a message that
 * crashes the process must not loop forever); set aside and tried again later, as often as it
 * takes, while a row it needs is locked by another transaction.
 * @module
 */
import { type Database, LockTimeout, TransactionConflict } from "../storage/database.ts";
import type { DatabaseWaits } from "../storage/database_waits.ts";
import type { DeliveryCounter } from "./delivery_counter.ts";
import type { Delivery, MessageBus } from "./message_bus.ts";
import { dlqOf, retryQueueOf } from "./topology.ts";
import { errorText, type Logger } from "../runtime/log.ts";
import {
  DEAD_LETTERED_AT_HEADER,
  decodeBody,
  ERROR_ID_HEADER,
  InvalidMessage,
  LAST_ERROR_HEADER,
  LOCK_WAITS_HEADER,
  ORIGINAL_QUEUE_HEADER,
  REASON_HEADER,
  RETRY_HEADER,
  ROUTING_KEY_HEADER,
  TRACEPARENT_HEADER,
  WAITING_SINCE_HEADER,
} from "./contract.ts";
import { copyProperties } from "./_message_copy.ts";
import { newErrorId } from "../runtime/error_id.ts";
import type { QueueMetrics } from "../runtime/metrics.ts";
import { endSpan, startMessageSpan, traceparentOf, withSpan } from "../runtime/tracing.ts";

export { InvalidMessage };
// The header names and the body limit live in the wire contract; exported here too, where the
// suites and tools that read dead letters have always found them.
export {
  ERROR_ID_HEADER,
  LOCK_WAITS_HEADER,
  MAX_MESSAGE_BYTES,
  REASON_HEADER,
  RETRY_HEADER,
  ROUTING_KEY_HEADER,
  WAITING_SINCE_HEADER,
} from "./contract.ts";
export type { DeliveryCounter };

/**
 * Longest delay before a message set aside for a lock is tried again: the lock may go at any
 * moment, and an order should follow soon after.
 */
export const MAX_LOCK_WAIT_DELAY_MS = 10_000;

/**
 * Messages handled alone at once, each in its own transaction, after their batch waited too
 * long for a lock: those that need the held row wait for it side by side, not one after the
 * other, and half of the pool's connections stay free for the other batches.
 */
export const ALONE_AT_ONCE = 4;

/** A parsed delivery as event handlers see it. */
export interface IncomingMessage {
  /** The parsed JSON body (still to be validated by the handler). */
  body: unknown;
  /** The routing key it was first published with (kept across retries). */
  routingKey: string;
  /** The AMQP message id, when the publisher set one. */
  messageId?: string;
  /** How many times it was retried before this attempt. */
  retries: number;
}

/**
 * Handles one message inside the transaction the consumer opened for it (store calls join it);
 * throws {@linkcode InvalidMessage} for poison, anything else to have it retried.
 */
export type MessageHandler = (message: IncomingMessage) => void | Promise<void>;

/**
 * Called once a message was set aside in the DLQ, before it is acknowledged, so the service can
 * give the waiting student an outcome; also when its copy could not be published, before it is
 * rejected to the queue's own dead-letter exchange. `body` is the raw body, possibly not JSON.
 * `reason` is for staff (it may quote a driver or a handler); a student is shown `errorId`,
 * under which the log and the DLQ copy's headers keep the reason.
 */
export type DeadLetterHook = (
  body: Uint8Array,
  reason: string,
  errorId: string,
) => void | Promise<void>;

/**
 * Runs first in the transaction of a batch, with every message of it that parses, to take
 * what the batch will need in one order for every replica (e.g. the stock rows of its items),
 * so that two batches wait for each other instead of deadlocking. Its failure fails the batch.
 */
export type BatchPreparation = (messages: IncomingMessage[]) => Promise<void>;

/** A queue's handler, and optionally what to do when one of its messages is dead-lettered. */
export interface Subscription {
  /** Handles each valid message of the queue. */
  handle: MessageHandler;
  /** Loads what a batch needs before its handlers run (e.g. locks the stock rows). */
  prepareBatch?: BatchPreparation;
  /** Gives a dead-lettered message's order an outcome. */
  onDeadLetter?: DeadLetterHook;
}

/** Settings of {@linkcode createConsumer}: the queue's {@linkcode Subscription}, and the rest. */
export interface ConsumerOptions extends Subscription {
  /** Where retry and dead-letter copies are published. */
  bus: MessageBus;
  /** Where dead letters, retries and failed follow-ups are logged. */
  log: Logger;
  /** The service's database: a batch of messages is handled in one transaction of it. */
  db: Database;
  /**
   * Counts the redeliveries that reached the handler and never came back, one in hand at a
   * time. (A quorum queue's own `x-delivery-count` also counts the messages that were merely in
   * flight beside a crashing one, so it cannot tell which message to dead-letter.)
   */
  counter: DeliveryCounter;
  /** Retries of a failing handler before its message is dead-lettered. */
  maxRetries: number;
  /** Delay before each retry, the retry copy's per-message TTL. */
  retryDelayMs: number;
  /** Deliveries without an ack (crashes) before a message is dead-lettered unseen. */
  maxDeliveries: number;
  /** Where messages set aside for a lock are noted, for `/ready`; nowhere when absent. */
  waits?: DatabaseWaits;
  /** Where the queue's deliveries are counted; nowhere when absent. */
  metrics?: QueueMetrics;
}

const UNMEASURED: QueueMetrics = {
  consumed() {},
  deadLettered() {},
  retried() {},
  handled() {},
};

/** Why a message's handling ended for good, for staff, and the error id a student is shown. */
interface DeadLetterRecord {
  reason: string;
  errorId: string;
}

/** A delivery being handled, with the span that traces it (with tracing on). */
interface Handling {
  delivery: Delivery;
  span: ReturnType<typeof startMessageSpan>;
  /** When its handling started (`performance.now()`). */
  started: number;
}

/**
 * Builds the handler of a queue's deliveries that applies the retry and dead-letter policy
 * around `handle`. Deliveries that arrive together are handled in one transaction (one commit
 * for the batch, each message in a savepoint of its own) and acknowledged after it committed; a
 * redelivered message is handled alone and counted, so a message that crashes the process
 * cannot take the ones around it down with it.
 *
 * A lock another transaction holds for longer than the database's lock timeout (an operator's
 * `psql`, a stopped replica) must not hold up the messages that do not need it: a batch that
 * waited that long runs again one message per transaction, so that only the messages needing
 * the held row wait, and those are set aside in the retry queue, with a growing delay, as often
 * as it takes. That is no failure: their retries are not counted, and they are never
 * dead-lettered for it. Back from the retry queue they are handled alone again, so that their
 * next wait holds none of the rows the others need.
 */
export function createConsumer(
  options: ConsumerOptions,
): (deliveries: Delivery[]) => Promise<void> {
  const {
    bus,
    log,
    db,
    counter,
    handle,
    prepareBatch,
    onDeadLetter,
    maxRetries,
    retryDelayMs,
    maxDeliveries,
    waits,
  } = options;
  const metrics = options.metrics ?? UNMEASURED;

  const begin = (delivery: Delivery, started: number): Handling => ({
    delivery,
    started,
    span: startMessageSpan({
      operation: "process",
      destination: delivery.queue,
      routingKey: originalRoutingKey(delivery),
      messageId: delivery.messageId,
      orderId: delivery.correlationId,
      parent: delivery.headers[TRACEPARENT_HEADER],
    }),
  });

  /** Ends a delivery's span and records how long it took. */
  const finish = ({ span, started }: Handling, error?: unknown) => {
    endSpan(span, error);
    metrics.handled((performance.now() - started) / 1000);
  };

  /** Headers that make a copy's next handling a child of this one's span. */
  const traceHeaders = (handling: Handling): Record<string, unknown> => {
    const traceparent = traceparentOf(handling.span);
    return traceparent === undefined ? {} : { [TRACEPARENT_HEADER]: traceparent };
  };

  /** Gives the waiting student an outcome; its failure must not put the message back. */
  const followUp = async (delivery: Delivery, reason: string, errorId: string) => {
    if (!onDeadLetter) return;
    try {
      await onDeadLetter(delivery.body, reason, errorId);
    } catch (err) {
      log.error("dead-letter follow-up failed", {
        queue: delivery.queue,
        message_id: delivery.messageId,
        error: errorText(err),
      });
    }
  };

  /**
   * Settles a delivery whose retry or dead-letter copy could not be published. Broker there
   * but not taking the copy (refused, blocking, still unroutable): the queue's own dead-letter
   * exchange takes the delivery, reason in x-death, after the order got its outcome (a crash in
   * between repeats the outcome, never loses it). Connection or channel gone: it is left
   * unsettled, and the broker delivers it again.
   */
  const rejectToDeadLetterExchange = async (
    delivery: Delivery,
    { reason, errorId }: DeadLetterRecord,
    err: unknown,
  ) => {
    if (!bus.connected || !delivery.channelOpen) return;
    log.warn("copy not published; rejecting to the queue's dead-letter exchange", {
      queue: delivery.queue,
      message_id: delivery.messageId,
      order_id: delivery.correlationId,
      error_id: errorId,
      error: errorText(err),
    });
    await followUp(delivery, reason, errorId);
    delivery.reject();
    metrics.deadLettered();
  };

  /**
   * Gives a failure that ends a message's handling an error id, and logs its reason under it:
   * the one line where staff find what a student quoting the id ran into.
   */
  const recordDeadLetter = (delivery: Delivery, reason: string): DeadLetterRecord => {
    const errorId = newErrorId();
    log.error("dead-lettering message", {
      queue: delivery.queue,
      message_id: delivery.messageId,
      order_id: delivery.correlationId,
      error_id: errorId,
      reason,
    });
    return { reason, errorId };
  };

  const deadLetter = async (handling: Handling, reason: string) => {
    const { delivery } = handling;
    const record = recordDeadLetter(delivery, reason);
    try {
      await bus.sendToQueue(
        dlqOf(delivery.queue),
        delivery.body,
        copyProperties(delivery, {
          [REASON_HEADER]: reason,
          [ERROR_ID_HEADER]: record.errorId,
          [ORIGINAL_QUEUE_HEADER]: delivery.queue,
          [ROUTING_KEY_HEADER]: originalRoutingKey(delivery),
          [DEAD_LETTERED_AT_HEADER]: new Date().toISOString(),
          ...traceHeaders(handling),
        }),
      );
    } catch (err) {
      return rejectToDeadLetterExchange(delivery, record, err);
    }
    await followUp(delivery, reason, record.errorId);
    delivery.ack();
    metrics.deadLettered();
  };

  const retryOrDeadLetter = async (handling: Handling, err: unknown) => {
    const { delivery } = handling;
    const retries = retriesOf(delivery);
    if (err instanceof InvalidMessage) return deadLetter(handling, err.message);
    if (retries >= maxRetries) {
      return deadLetter(handling, `failed after ${retries + 1} attempts: ${errorText(err)}`);
    }
    log.warn("handler failed, will retry", {
      queue: delivery.queue,
      message_id: delivery.messageId,
      order_id: delivery.correlationId,
      retry: retries + 1,
      error: errorText(err),
    });
    try {
      await bus.sendToQueue(retryQueueOf(delivery.queue), delivery.body, {
        ...copyProperties(delivery, {
          [RETRY_HEADER]: retries + 1,
          [ROUTING_KEY_HEADER]: originalRoutingKey(delivery),
          [LAST_ERROR_HEADER]: errorText(err),
          ...traceHeaders(handling),
        }),
        expiration: String(retryDelayMs),
      });
    } catch (copyError) {
      const reason = `failed after ${retries + 1} attempts and could not be retried: ${
        errorText(err)
      }`;
      return rejectToDeadLetterExchange(delivery, recordDeadLetter(delivery, reason), copyError);
    }
    delivery.ack();
    metrics.retried();
  };

  /** Retries or dead-letters a failed delivery in its span, then ends the span. */
  const fail = async (handling: Handling, error: unknown) => {
    await withSpan(handling.span, () => retryOrDeadLetter(handling, error));
    finish(handling, error);
    waitsNoMore(handling.delivery);
  };

  /** Acknowledges a delivery whose effects are committed. */
  const succeed = (handling: Handling) => {
    handling.delivery.ack();
    metrics.consumed();
    finish(handling);
    waitsNoMore(handling.delivery);
  };

  /** A delivery that waited for a lock before went through, or failed otherwise. */
  const waitsNoMore = (delivery: Delivery) => {
    if (waits?.heldBackCount && waitedForLock(delivery)) waits.done(waitKey(delivery));
  };

  /**
   * Sets a delivery aside while a row it needs is locked: a copy goes to the retry queue with a
   * delay that doubles with each wait, its retry count unchanged, and the delivery is acked.
   */
  const holdBack = async (handling: Handling, error: unknown) => {
    const { delivery } = handling;
    const lockWaits = lockWaitsOf(delivery) + 1;
    const since = waitingSinceOf(delivery) ?? Date.now();
    const delayMs = lockWaitDelay(retryDelayMs, lockWaits);
    // Expected back after the delay and one more lock wait; later, another replica had it.
    waits?.heldBack(waitKey(delivery), since, 2 * delayMs + 10_000);
    log.warn("a row it needs is locked by another transaction; will try again", {
      queue: delivery.queue,
      message_id: delivery.messageId,
      order_id: delivery.correlationId,
      lock_waits: lockWaits,
      waiting_ms: Date.now() - since,
      delay_ms: delayMs,
    });
    try {
      await withSpan(
        handling.span,
        () =>
          bus.sendToQueue(retryQueueOf(delivery.queue), delivery.body, {
            ...copyProperties(delivery, {
              [LOCK_WAITS_HEADER]: lockWaits,
              [WAITING_SINCE_HEADER]: since,
              [ROUTING_KEY_HEADER]: originalRoutingKey(delivery),
              ...traceHeaders(handling),
            }),
            expiration: String(delayMs),
          }),
      );
    } catch (copyError) {
      // As for a retry that cannot be published: the broker is there but refuses copies.
      const reason = `a row it needs stayed locked and it could not be set aside: ${
        errorText(error)
      }`;
      await rejectToDeadLetterExchange(delivery, recordDeadLetter(delivery, reason), copyError);
      finish(handling, error);
      return;
    }
    delivery.ack();
    metrics.retried();
    finish(handling, error);
  };

  /** Runs the handler in a transaction (a savepoint inside a batch); throws what it throws. */
  const run = (message: IncomingMessage) =>
    db.transaction(async () => {
      await handle(message);
    });

  /**
   * Handles first deliveries: all or nothing first, the way nearly every batch goes through;
   * should anything of it fail, nothing of it stays, and it runs again the careful way, each
   * message in a savepoint of its own, or alone when it waited for a lock.
   */
  const handleFirstDeliveries = async (batch: Delivery[], started: number) => {
    const handlings = batch.map((delivery) => begin(delivery, started));
    const failure = await handleAllOrNothing(handlings);
    if (failure === undefined) return;
    if (failure instanceof LockTimeout) {
      return handlings.length > 1 ? handleAlone(handlings) : holdBack(handlings[0], failure);
    }
    await handleTogether(handlings);
  };

  /**
   * Handles deliveries in one transaction without savepoints and acknowledges them; returns
   * what failed instead, with nothing of the batch committed. A savepoint per message and per
   * store write was most of the transaction's cost (on PostgreSQL a round trip each).
   */
  const handleAllOrNothing = async (handlings: Handling[]): Promise<unknown> => {
    try {
      await db.transaction(async () => {
        const messages = handlings.map((handling) => incoming(handling.delivery));
        await prepareBatch?.(messages);
        for (let i = 0; i < handlings.length; i++) {
          await withSpan(handlings[i].span, () => handle(messages[i]));
        }
      }, { savepoints: false });
    } catch (error) {
      return error ?? new Error("the batch failed without a reason");
    }
    for (const handling of handlings) succeed(handling);
    return undefined;
  };

  /** Handles deliveries in one transaction, each message in a savepoint of its own. */
  const handleTogether = async (handlings: Handling[]) => {
    let handled: Handling[] = [];
    let failed: { handling: Handling; error: unknown }[] = [];
    let held: { handling: Handling; error: unknown }[] = [];
    try {
      await db.transaction(async () => {
        // A transaction that collided with another runs again from here: start over.
        handled = [];
        failed = [];
        held = [];
        const parsed = handlings.map((handling) => {
          try {
            return { handling, message: incoming(handling.delivery) };
          } catch (error) {
            return { handling, error };
          }
        });
        await prepareBatch?.(parsed.flatMap((p) => p.message ? [p.message] : []));
        for (const { handling, message, error } of parsed) {
          if (!message) {
            failed.push({ handling, error });
            continue;
          }
          try {
            await withSpan(handling.span, () => run(message));
            handled.push(handling);
          } catch (error) {
            // The whole batch must run again, not this message alone.
            if (error instanceof TransactionConflict) throw error;
            // Its savepoint gave up waiting for a lock: it waits, the others go ahead.
            if (error instanceof LockTimeout) held.push({ handling, error });
            else failed.push({ handling, error });
          }
        }
      });
    } catch (error) {
      // The commit itself failed: none of the batch happened.
      handled = [];
      failed = [];
      held = [];
      // The batch waited too long for a row: only the messages that need it may wait again.
      if (error instanceof LockTimeout && handlings.length > 1) return handleAlone(handlings);
      if (error instanceof LockTimeout) held = handlings.map((handling) => ({ handling, error }));
      else failed = handlings.map((handling) => ({ handling, error }));
    }
    for (const handling of handled) succeed(handling);
    for (const { handling, error } of failed) await fail(handling, error);
    for (const { handling, error } of held) await holdBack(handling, error);
  };

  /** Handles each delivery in a transaction of its own, {@linkcode ALONE_AT_ONCE} at a time. */
  const handleAlone = async (handlings: Handling[]) => {
    let next = 0;
    const worker = async () => {
      while (next < handlings.length) await handleTogether([handlings[next++]]);
    };
    await Promise.all(Array.from({ length: Math.min(ALONE_AT_ONCE, handlings.length) }, worker));
  };

  const handleRedelivery = async (delivery: Delivery, started: number) => {
    const handling = begin(delivery, started);
    const key = delivery.messageId ?? await digest(delivery.body);
    let deliveries = 0;
    let failure: { error: unknown } | undefined;
    // Counted, handled and forgotten while no other redelivery of this process is counted: a
    // crash meanwhile is charged to this message alone, not to others counted while its
    // handler waited for the database.
    await counter.inHand(async () => {
      deliveries = await counter.bump(key);
      if (deliveries > maxDeliveries) return;
      try {
        // Forgotten with its effects, in their transaction: once they are committed, it is no
        // longer in hand, whatever stops the process before the ack.
        await withSpan(handling.span, () =>
          db.transaction(async () => {
            await handle(incoming(delivery));
            await counter.forget(key);
          }));
      } catch (error) {
        failure = { error };
        // The handler came back, so this message did not stop the process.
        await counter.forget(key).catch(() => {});
      }
    });
    if (deliveries > maxDeliveries) {
      const reason =
        `delivered ${deliveries} times without being acknowledged (the consumer kept stopping)`;
      await withSpan(handling.span, () => deadLetter(handling, reason));
      finish(handling, new Error(reason));
      await counter.forget(key);
      return;
    }
    if (failure?.error instanceof LockTimeout) return holdBack(handling, failure.error);
    if (failure) return fail(handling, failure.error);
    succeed(handling);
  };

  return async (deliveries) => {
    const started = performance.now();
    // In delivery order: runs of first deliveries together, redeliveries one at a time.
    let start = 0;
    while (start < deliveries.length) {
      if (deliveries[start].redelivered) {
        await handleRedelivery(deliveries[start++], started);
        continue;
      }
      let end = start;
      while (end < deliveries.length && !deliveries[end].redelivered) end++;
      const run = deliveries.slice(start, end);
      const waited = run.filter(waitedForLock);
      if (waited.length === 0) {
        await handleFirstDeliveries(run, started);
      } else {
        // Messages back from waiting for a lock may wait again: alone, holding none of the
        // rows the others need.
        const fresh = run.filter((delivery) => !waitedForLock(delivery));
        if (fresh.length > 0) await handleFirstDeliveries(fresh, started);
        await handleAlone(waited.map((delivery) => begin(delivery, started)));
      }
      start = end;
    }
  };
}

/** The message as handlers see it; throws {@linkcode InvalidMessage} for a body that isn't JSON. */
function incoming(delivery: Delivery): IncomingMessage {
  return {
    body: decodeBody(delivery.body),
    routingKey: originalRoutingKey(delivery),
    messageId: delivery.messageId,
    retries: retriesOf(delivery),
  };
}

function retriesOf(delivery: Delivery): number {
  return Number(delivery.headers[RETRY_HEADER] ?? 0) || 0;
}

function lockWaitsOf(delivery: Delivery): number {
  return Number(delivery.headers[LOCK_WAITS_HEADER] ?? 0) || 0;
}

/** True for a copy that was set aside before because a row it needed was locked. */
function waitedForLock(delivery: Delivery): boolean {
  return lockWaitsOf(delivery) > 0;
}

function waitingSinceOf(delivery: Delivery): number | undefined {
  const since = Number(delivery.headers[WAITING_SINCE_HEADER]);
  // A header from elsewhere must not claim a wait longer than a day.
  return Number.isFinite(since) && since > Date.now() - 86_400_000 ? since : undefined;
}

/** What a message is known by while it waits for a lock: its id, its order's, or its body. */
function waitKey(delivery: Delivery): string {
  return delivery.messageId ?? delivery.correlationId ?? new TextDecoder().decode(delivery.body);
}

/**
 * The delay before the `lockWaits`-th attempt of a message set aside for a lock: `retryDelayMs`
 * doubling with each wait, up to {@linkcode MAX_LOCK_WAIT_DELAY_MS} (or `retryDelayMs`, if
 * that is longer).
 */
export function lockWaitDelay(retryDelayMs: number, lockWaits: number): number {
  const doubled = retryDelayMs * 2 ** Math.min(lockWaits - 1, 30);
  return Math.max(retryDelayMs, Math.min(doubled, MAX_LOCK_WAIT_DELAY_MS));
}

function originalRoutingKey(delivery: Delivery): string {
  const kept = delivery.headers[ROUTING_KEY_HEADER];
  return typeof kept === "string" ? kept : delivery.routingKey;
}

async function digest(body: Uint8Array): Promise<string> {
  const hash = await crypto.subtle.digest("SHA-256", body as Uint8Array<ArrayBuffer>);
  return "sha256:" +
    Array.from(new Uint8Array(hash), (b) => b.toString(16).padStart(2, "0")).join("");
}
