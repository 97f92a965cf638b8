/**
 * Notifications in the notification service's database: at most one per order and outcome,
 * so a redelivered result never messages a student twice.
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import type { Database } from "@campus/shared/database";
import type { InventoryResult } from "@campus/shared/events";
import type { PostgresDatabase } from "@campus/shared/postgres";
import { pagesOf, type SqliteDatabase } from "@campus/shared/sqlite";
import { SqliteNotificationStore } from "./notification_store_sqlite.ts";
import { PostgresNotificationStore } from "./notification_store_postgres.ts";

/** A message recorded for a student. */
export interface Notification {
  order_id: string;
  student_id: string;
  outcome: "RESERVED" | "FAILED";
  message: string;
  sent_at: string;
}

/** Filters of {@linkcode NotificationStore.pages}. */
export interface NotificationFilter {
  order_id?: string;
  student_id?: string;
}

/** The notification service's store. */
export interface NotificationStore {
  /** Records the notification for a result; false when it was recorded before. */
  record(result: InventoryResult): Promise<boolean>;
  /** Notifications oldest first, optionally for one order or one student, a page at a time. */
  pages(filter?: NotificationFilter): AsyncGenerator<Notification[]>;
}

/** The notifications of `db`, its schema brought up to date. */
export async function openNotificationStore(db: Database): Promise<NotificationStore> {
  return db.engine === "postgres"
    ? await PostgresNotificationStore.open(db as PostgresDatabase)
    : await SqliteNotificationStore.open(db as SqliteDatabase);
}

/** The notification service's store on a SQLite connection, for synchronous handlers. */
export class SyncNotificationStore {
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
  list(filter: NotificationFilter = {}): Notification[] {
    return [...this.pages(filter)].flat();
  }

  /** Like {@linkcode SyncNotificationStore.list}, a page at a time, for listings of any size. */
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

/** The text a student reads. */
export function messageFor(result: InventoryResult): string {
  const { student_id, qty, item, order_id } = result.event;
  return result.outcome === "RESERVED"
    ? `Hi ${student_id}, your order of ${qty} x ${item} is confirmed (order ${order_id}).`
    : `Sorry ${student_id}, your order of ${qty} x ${item} could not be completed: ${result.event.reason} (order ${order_id}).`;
}
