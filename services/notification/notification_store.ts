/**
 * Notifications in the notification service's SQLite database: at most one per order and
 * outcome, so a redelivered result never messages a student twice.
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import type { InventoryResult } from "@campus/shared/events";
import { notificationMessage } from "@campus/shared/notification_message";
import { pagesOf } from "@campus/shared/sqlite";

/** A message recorded for a student. */
export interface Notification {
  order_id: string;
  student_id: string;
  outcome: "RESERVED" | "FAILED";
  message: string;
  sent_at: string;
}

/** Filters of {@linkcode NotificationStore.list}. */
export interface NotificationFilter {
  order_id?: string;
  student_id?: string;
}

/** The notification service's store. */
export class NotificationStore {
  #insert: StatementSync;

  constructor(private readonly db: DatabaseSync) {
    db.exec(`CREATE TABLE IF NOT EXISTS notifications (
      id INTEGER PRIMARY KEY,
      order_id TEXT NOT NULL,
      student_id TEXT NOT NULL,
      outcome TEXT NOT NULL,
      message TEXT NOT NULL,
      sent_at TEXT NOT NULL,
      UNIQUE (order_id, outcome)
    );
    CREATE INDEX IF NOT EXISTS notifications_by_student ON notifications (student_id);`);
    this.#insert = db.prepare(`INSERT OR IGNORE INTO notifications
      (order_id, student_id, outcome, message, sent_at) VALUES (?, ?, ?, ?, ?)`);
  }

  /** Records the notification for a result; false when it was recorded before. */
  record(result: InventoryResult): boolean {
    const { order_id, student_id } = result.event;
    return this.#insert.run(
      order_id,
      student_id,
      result.outcome,
      notificationMessage(result),
      new Date().toISOString(),
    ).changes > 0;
  }

  /** Notifications oldest first, optionally for one order or one student. */
  list(filter: NotificationFilter = {}): Notification[] {
    return [...this.pages(filter)].flat();
  }

  /** Like {@linkcode NotificationStore.list}, a page at a time, for listings of any size. */
  *pages(filter: NotificationFilter = {}): Generator<Notification[]> {
    const { order_id, student_id } = filter;
    for (
      const rows of pagesOf(this.db, {
        table: "notifications",
        columns: "order_id, student_id, outcome, message, sent_at",
        where: { order_id, student_id },
      })
    ) {
      yield rows.map((r) => ({
        order_id: String(r.order_id),
        student_id: String(r.student_id),
        outcome: r.outcome as Notification["outcome"],
        message: String(r.message),
        sent_at: String(r.sent_at),
      }));
    }
  }
}
