/**
 * Notifications in PostgreSQL, shared by the notification replicas. The unique key on order
 * and outcome lets exactly one replica record an event delivered twice, even at the same time.
 * @module
 */
import { pagesOf, type PostgresDatabase, type Sql } from "@campus/shared/postgres";
import {
  type Notice,
  notificationMessage,
  type NotifiedStatus,
} from "@campus/shared/notification_message";
import { bindToActiveContext } from "@campus/shared/tracing";
import {
  type Notification,
  type NotificationFilter,
  type RecordOutcome,
  UNTOLD_AFTER_CANCEL,
} from "./notification.ts";

const SCHEMA = [
  `CREATE TABLE notifications (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id text NOT NULL,
    student_id text NOT NULL,
    outcome text NOT NULL,
    message text NOT NULL,
    sent_at timestamptz NOT NULL,
    UNIQUE (order_id, outcome)
  );
  CREATE INDEX notifications_by_student ON notifications (student_id, id);`,
];

/** A notice to record, as a row, and who hears what became of it. */
interface Wanted {
  order_id: string;
  student_id: string;
  outcome: NotifiedStatus;
  message: string;
  sent_at: string;
  heard: (outcome: RecordOutcome) => void;
}

/** The notification store in a PostgreSQL database. */
export class PostgresNotificationStore {
  private constructor(private readonly db: PostgresDatabase) {}

  /** The notifications of `db`, its schema brought up to date. */
  static async open(db: PostgresDatabase): Promise<PostgresNotificationStore> {
    await db.migrate("notifications", SCHEMA);
    return new PostgresNotificationStore(db);
  }

  /**
   * Records the notification of a notice, unless told before or contradicting a cancel; `heard`
   * hears what it did once that is committed. Inside a transaction the insert waits for its
   * end, where the notices of the whole transaction (a batch of messages) go in one statement.
   */
  async record(notice: Notice, heard: (outcome: RecordOutcome) => void): Promise<void> {
    const row: Wanted = {
      order_id: notice.order_id,
      student_id: notice.student_id,
      outcome: notice.status,
      message: notificationMessage(notice),
      sent_at: new Date().toISOString(),
      heard: bindToActiveContext(heard),
    };
    if (!this.db.defer(this.#writer, row)) {
      await this.#writer.write([row], this.db.sql, (hook) => hook());
    }
  }

  /** Writes the notices of a transaction, and tells each its outcome after the commit. */
  #writer = {
    async write(rows: Wanted[], sql: Sql, afterCommit: (hook: () => void) => void) {
      const outcomes = entangled(rows)
        ? await recordInTurn(rows, sql)
        : await recordTogether(rows, sql);
      afterCommit(() => rows.forEach((row, i) => row.heard(outcomes[i])));
    },
  };

  /** Records oldest first, a batch (one read) at a time. */
  async *batches(filter: NotificationFilter = {}): AsyncGenerator<Notification[]> {
    const { order_id, student_id } = filter;
    for await (
      const rows of pagesOf(this.db, {
        table: "notifications",
        columns: ["order_id", "student_id", "outcome", "message", "sent_at"],
        key: "id",
        where: { order_id, student_id },
      })
    ) {
      yield rows.map((r) => ({
        order_id: r.order_id,
        student_id: r.student_id,
        outcome: r.outcome,
        message: r.message,
        sent_at: (r.sent_at as Date).toISOString(),
      }));
    }
  }
}

/**
 * True when a cancel and an inventory result of one order are recorded together: whether the
 * result is told depends on which comes first, which one statement cannot see.
 */
function entangled(rows: readonly Wanted[]): boolean {
  const cancelled = new Set(rows.filter((r) => r.outcome === "CANCELLED").map((r) => r.order_id));
  return cancelled.size > 0 &&
    rows.some((r) => UNTOLD_AFTER_CANCEL.includes(r.outcome) && cancelled.has(r.order_id));
}

/**
 * Records `rows` in one statement, each as {@linkcode recordInTurn} would: the first of an
 * order and outcome is recorded unless told before or after a cancel, the rest are duplicates.
 */
async function recordTogether(rows: readonly Wanted[], sql: Sql): Promise<RecordOutcome[]> {
  const wanted = rows.map(({ heard: _, ...row }, n) => ({
    ...row,
    untold_after_cancel: UNTOLD_AFTER_CANCEL.includes(row.outcome),
    n,
  }));
  // Inserted in the rows' order, so that of two rows with one key the first is the one kept.
  const inserted = await sql`WITH wanted AS (
      SELECT * FROM jsonb_to_recordset(${sql.json(wanted)}) AS w (order_id text, student_id text,
        outcome text, message text, sent_at timestamptz, untold_after_cancel boolean, n int)
    )
    INSERT INTO notifications (order_id, student_id, outcome, message, sent_at)
    SELECT order_id, student_id, outcome, message, sent_at FROM wanted
    WHERE NOT untold_after_cancel OR NOT EXISTS (SELECT 1 FROM notifications
      WHERE notifications.order_id = wanted.order_id AND notifications.outcome = 'CANCELLED')
    ORDER BY n
    ON CONFLICT (order_id, outcome) DO NOTHING
    RETURNING order_id, outcome`;
  const keyOf = (r: { order_id: string; outcome: string }) => `${r.order_id}\n${r.outcome}`;
  const recorded = new Set(inserted.map((r) => keyOf(r as Wanted)));
  const unrecorded = rows.filter((row) => !recorded.has(keyOf(row)));
  // Rows not inserted (redeliveries, mostly): told before, or held back by a cancel. Read after
  // the insert, which waited for any other transaction inserting the same key.
  const told = new Set<string>();
  if (unrecorded.length > 0) {
    const keys = unrecorded.map(({ order_id, outcome }) => ({ order_id, outcome }));
    const found = await sql`SELECT notifications.order_id, notifications.outcome
      FROM notifications JOIN jsonb_to_recordset(${sql.json(keys)})
        AS k (order_id text, outcome text)
        ON notifications.order_id = k.order_id AND notifications.outcome = k.outcome`;
    for (const r of found) told.add(keyOf(r as Wanted));
  }
  const seen = new Set<string>();
  return rows.map((row): RecordOutcome => {
    const key = keyOf(row);
    const first = !seen.has(key);
    seen.add(key);
    if (recorded.has(key)) return first ? "recorded" : "duplicate";
    return told.has(key) ? "duplicate" : "after_cancel";
  });
}

/** Records `rows` one statement each, in turn. */
async function recordInTurn(rows: readonly Wanted[], sql: Sql): Promise<RecordOutcome[]> {
  const outcomes: RecordOutcome[] = [];
  for (const { order_id, student_id, outcome, message, sent_at } of rows) {
    // An inventory result is recorded only while its order has no CANCELLED notification: the
    // check and the insert are one statement.
    const inserted = await sql`INSERT INTO notifications
      (order_id, student_id, outcome, message, sent_at)
      SELECT ${order_id}, ${student_id}, ${outcome}, ${message}, ${sent_at}
      WHERE NOT ${UNTOLD_AFTER_CANCEL.includes(outcome)}::boolean
        OR NOT EXISTS (SELECT 1 FROM notifications
          WHERE order_id = ${order_id} AND outcome = 'CANCELLED')
      ON CONFLICT (order_id, outcome) DO NOTHING`;
    if (inserted.count > 0) {
      outcomes.push("recorded");
      continue;
    }
    const [told] = await sql`SELECT 1 FROM notifications
      WHERE order_id = ${order_id} AND outcome = ${outcome}`;
    outcomes.push(told ? "duplicate" : "after_cancel");
  }
  return outcomes;
}
