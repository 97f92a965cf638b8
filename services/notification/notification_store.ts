/**
 * Notifications in the notification service's SQLite database: at most one per order and
 * outcome, so a redelivered result never messages a student twice.
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import type { InventoryResult } from "@campus/shared/events";

/** A message recorded for a student. */
export interface Notification {
  order_id: string;
  student_id: string;
  outcome: "RESERVED" | "FAILED";
  message: string;
  sent_at: string;
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
      messageFor(result),
      new Date().toISOString(),
    ).changes > 0;
  }

  /** Notifications oldest first, optionally for one order or one student. */
  list(filter: { order_id?: string; student_id?: string } = {}): Notification[] {
    const where: string[] = [];
    const args: string[] = [];
    for (const key of ["order_id", "student_id"] as const) {
      const value = filter[key];
      if (value) {
        where.push(`${key} = ?`);
        args.push(value);
      }
    }
    const sql = `SELECT order_id, student_id, outcome, message, sent_at FROM notifications
      ${where.length ? "WHERE " + where.join(" AND ") : ""} ORDER BY id`;
    return this.db.prepare(sql).all(...args).map((r) => ({
      order_id: String(r.order_id),
      student_id: String(r.student_id),
      outcome: r.outcome as Notification["outcome"],
      message: String(r.message),
      sent_at: String(r.sent_at),
    }));
  }
}

/** The text a student reads. */
export function messageFor(result: InventoryResult): string {
  const { student_id, qty, item, order_id } = result.event;
  return result.outcome === "RESERVED"
    ? `Hi ${student_id}, your order of ${qty} x ${item} is confirmed (order ${order_id}).`
    : `Sorry ${student_id}, your order of ${qty} x ${item} could not be completed: ${result.event.reason} (order ${order_id}).`;
}
