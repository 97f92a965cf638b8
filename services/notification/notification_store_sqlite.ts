/**
 * Notifications in the notification service's SQLite database.
 * @module
 */
import type { StatementSync } from "node:sqlite";
import { pagesOf, type SqliteDatabase } from "@campus/shared/sqlite";
import { type Notice, notificationMessage } from "@campus/shared/notification_message";
import {
  type Notification,
  type NotificationFilter,
  type RecordOutcome,
  UNTOLD_AFTER_CANCEL,
} from "./notification.ts";

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS notifications (
    id INTEGER PRIMARY KEY,
    order_id TEXT NOT NULL,
    student_id TEXT NOT NULL,
    outcome TEXT NOT NULL,
    message TEXT NOT NULL,
    sent_at TEXT NOT NULL,
    UNIQUE (order_id, outcome)
  );
  CREATE INDEX IF NOT EXISTS notifications_by_student ON notifications (student_id);`,
];

/** The notification store in a SQLite database. */
export class SqliteNotificationStore {
  #insert: StatementSync;
  #told: StatementSync;

  private constructor(private readonly db: SqliteDatabase) {
    // An inventory result is recorded only while its order has no CANCELLED notification: the
    // check and the insert are one statement. (The WHERE also keeps SQLite from reading the
    // ON CONFLICT as a join's ON.)
    // Numbered parameters: binding by name looks each one up, a third of the statement's cost.
    this.#insert = db.db.prepare(`INSERT INTO notifications
      (order_id, student_id, outcome, message, sent_at)
      SELECT ?1, ?2, ?3, ?4, ?5
      WHERE ?3 NOT IN (${UNTOLD_AFTER_CANCEL.map((s) => `'${s}'`).join(", ")})
        OR NOT EXISTS (SELECT 1 FROM notifications
          WHERE order_id = ?1 AND outcome = 'CANCELLED')
      ON CONFLICT (order_id, outcome) DO NOTHING`);
    this.#told = db.db.prepare(
      `SELECT 1 FROM notifications WHERE order_id = ? AND outcome = ?`,
    );
  }

  /** The notifications of `db`, its schema brought up to date. */
  static async open(db: SqliteDatabase): Promise<SqliteNotificationStore> {
    await db.migrate("notifications", SCHEMA);
    return new SqliteNotificationStore(db);
  }

  /**
   * Records the notification of a notice, unless told before or contradicting a cancel; `heard`
   * hears what it did once that is committed.
   */
  async record(notice: Notice, heard: (outcome: RecordOutcome) => void): Promise<void> {
    const { order_id, student_id, status } = notice;
    const outcome = await this.db.write((): RecordOutcome => {
      const inserted = this.#insert.run(
        order_id,
        student_id,
        status,
        notificationMessage(notice),
        new Date().toISOString(),
      ).changes > 0;
      if (inserted) return "recorded";
      return this.#told.get(order_id, status) ? "duplicate" : "after_cancel";
    });
    this.db.afterCommit(() => heard(outcome));
  }

  /** Records oldest first, a batch (one read) at a time. */
  async *batches(filter: NotificationFilter = {}): AsyncGenerator<Notification[]> {
    const { order_id, student_id } = filter;
    const pages = pagesOf(this.db.db, {
      table: "notifications",
      columns: "order_id, student_id, outcome, message, sent_at",
      where: { order_id, student_id },
    });
    try {
      while (true) {
        // Each page is read on its own, between the transactions of the consumers.
        const page = await this.db.read(() => pages.next());
        if (page.done) return;
        yield page.value.map((r) => ({
          order_id: String(r.order_id),
          student_id: String(r.student_id),
          outcome: r.outcome as Notification["outcome"],
          message: String(r.message),
          sent_at: String(r.sent_at),
        }));
      }
    } finally {
      pages.return(undefined);
    }
  }
}
