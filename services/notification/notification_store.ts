/**
 * Notifications in the notification service's database: at most one per order and status (its
 * `outcome`), so an event delivered twice, or a status reached twice, never messages a student
 * twice.
 * @module
 */
import type { Database } from "@campus/shared/database";
import type { Notice } from "@campus/shared/notification_message";
import type { PostgresDatabase } from "@campus/shared/postgres";
import type { SqliteDatabase } from "@campus/shared/sqlite";
import type { Notification, NotificationFilter, RecordOutcome } from "./notification.ts";

/** The notification service's store. */
export interface NotificationStore {
  /**
   * Records the notification of a notice, in `notificationMessage`'s words, and once that is
   * committed (at once outside a transaction) tells `heard` what it did: `recorded`; or nothing,
   * because one for its order and status was recorded before (`duplicate`), or because it is an
   * inventory result (`RESERVED`, `FAILED`) for an order whose student was already told it is
   * `CANCELLED` (`after_cancel`): inventory restarted and decided before it read the cancel, or
   * a late or stray result. The check and the insert are one statement. The outcome comes by
   * hook, not as the result, so that PostgreSQL may record a transaction's notices together at
   * its end, one statement for a batch of messages.
   */
  record(notice: Notice, heard: (outcome: RecordOutcome) => void): Promise<void>;
  /**
   * Notifications oldest first, optionally for one order or one student, a batch (one read) at
   * a time: pagination, so that any number streams in bounded memory.
   */
  batches(filter?: NotificationFilter): AsyncGenerator<Notification[]>;
}

/** The notifications of `db`, its schema brought up to date. */
export async function openNotificationStore(db: Database): Promise<NotificationStore> {
  // Only the engine in use is loaded: the PostgreSQL driver stays out of a SQLite service.
  if (db.engine === "postgres") {
    const { PostgresNotificationStore } = await import("./notification_store_postgres.ts");
    return await PostgresNotificationStore.open(db as PostgresDatabase);
  }
  const { SqliteNotificationStore } = await import("./notification_store_sqlite.ts");
  return await SqliteNotificationStore.open(db as SqliteDatabase);
}
