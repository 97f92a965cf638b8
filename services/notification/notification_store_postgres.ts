/**
 * Notifications in PostgreSQL, shared by the notification replicas. The unique key on order
 * and outcome lets exactly one replica record an event delivered twice, even at the same time.
 * @module
 */
import { pagesOf, type PostgresDatabase } from "@campus/shared/postgres";
import { type Notice, notificationMessage } from "@campus/shared/notification_message";
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

/** The notification store in a PostgreSQL database. */
export class PostgresNotificationStore {
  private constructor(private readonly db: PostgresDatabase) {}

  /** The notifications of `db`, its schema brought up to date. */
  static async open(db: PostgresDatabase): Promise<PostgresNotificationStore> {
    await db.migrate("notifications", SCHEMA);
    return new PostgresNotificationStore(db);
  }

  /** Records the notification of a notice, unless told before or contradicting a cancel. */
  async record(notice: Notice): Promise<RecordOutcome> {
    const { order_id, student_id, status } = notice;
    const sql = this.db.sql;
    // An inventory result is recorded only while its order has no CANCELLED notification: the
    // check and the insert are one statement.
    const inserted = await sql`INSERT INTO notifications
      (order_id, student_id, outcome, message, sent_at)
      SELECT ${order_id}, ${student_id}, ${status}, ${notificationMessage(notice)}, ${new Date()}
      WHERE NOT ${UNTOLD_AFTER_CANCEL.includes(status)}::boolean
        OR NOT EXISTS (SELECT 1 FROM notifications
          WHERE order_id = ${order_id} AND outcome = 'CANCELLED')
      ON CONFLICT (order_id, outcome) DO NOTHING`;
    if (inserted.count > 0) return "recorded";
    const [told] = await sql`SELECT 1 FROM notifications
      WHERE order_id = ${order_id} AND outcome = ${status}`;
    return told ? "duplicate" : "after_cancel";
  }

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
