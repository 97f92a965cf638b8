/**
 * Counts the deliveries of a message whose handler never returned (the process stopped), in
 * the service's own database so the count survives the crash it measures, and is shared by
 * the replicas a redelivery may go to. A first delivery is not stored; only redelivered ones
 * are, so a healthy message costs no write. Quorum queues count for themselves
 * (`x-delivery-count`) and need none of this.
 *
 * A process holds one counted message at a time ({@linkcode DeliveryCounter.inHand}): a count
 * stands for "this message was in hand when the process stopped", which is only true of one.
 * @module
 */
import type { StatementSync } from "node:sqlite";
import type { Database } from "../storage/database.ts";
import type { PostgresDatabase } from "../storage/postgres.ts";
import type { SqliteDatabase } from "../storage/sqlite.ts";

/** Deliveries of messages, by message key. */
export interface DeliveryCounter {
  /**
   * Runs `work` (count a redelivery, handle it, forget it) once no other redelivery of this
   * process is in hand, and holds the others back until it settled. A crash is then charged to
   * the message whose handler was running, never to one counted beside it while that handler
   * waited for the database.
   */
  inHand<T>(work: () => Promise<T>): Promise<T>;
  /** Records one more delivery of `key` and returns how many there were (2 the first time). */
  bump(key: string): Promise<number>;
  /** Forgets `key`: its handler returned, so it did not stop the process. */
  forget(key: string): Promise<void>;
}

/** The counter of `db`, its schema brought up to date. */
export async function openDeliveryCounter(db: Database): Promise<DeliveryCounter> {
  if (db.engine === "postgres") {
    const pg = db as PostgresDatabase;
    await pg.migrate("delivery_attempts", [
      `CREATE TABLE delivery_attempts (
        message_key text PRIMARY KEY,
        deliveries integer NOT NULL
      )`,
    ]);
    return {
      inHand: oneAtATime(),
      async bump(key) {
        const [row] = await pg.sql`INSERT INTO delivery_attempts VALUES (${key}, 2)
          ON CONFLICT (message_key)
          DO UPDATE SET deliveries = delivery_attempts.deliveries + 1
          RETURNING deliveries`;
        return Number(row.deliveries);
      },
      async forget(key) {
        await pg.sql`DELETE FROM delivery_attempts WHERE message_key = ${key}`;
      },
    };
  }
  const lite = db as SqliteDatabase;
  await lite.migrate("delivery_attempts", [
    `CREATE TABLE IF NOT EXISTS delivery_attempts (
      message_key TEXT PRIMARY KEY,
      deliveries INTEGER NOT NULL
    )`,
  ]);
  // The first delivery is not stored (it is not flagged redelivered), hence starting at 2.
  const bump: StatementSync = lite.db.prepare(`INSERT INTO delivery_attempts VALUES (?, 2)
    ON CONFLICT (message_key) DO UPDATE SET deliveries = deliveries + 1
    RETURNING deliveries`);
  const forget = lite.db.prepare(`DELETE FROM delivery_attempts WHERE message_key = ?`);
  return {
    inHand: oneAtATime(),
    bump: (key) => lite.write(() => Number(bump.get(key)?.deliveries)),
    forget: (key) => lite.write(() => void forget.run(key)),
  };
}

/** Runs the work handed to it one piece at a time, in the order it was handed over. */
function oneAtATime(): <T>(work: () => Promise<T>) => Promise<T> {
  let last: Promise<unknown> = Promise.resolve();
  return <T>(work: () => Promise<T>) => {
    const turn = last.then(work);
    // The next piece waits for this one to settle, however it ends.
    last = turn.catch(() => {});
    return turn;
  };
}
