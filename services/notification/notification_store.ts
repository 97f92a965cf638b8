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
import { SqliteNotificationStore } from "./notification_store_sqlite.ts";
import { PostgresNotificationStore } from "./notification_store_postgres.ts";
import type { Notification, NotificationFilter } from "./notification.ts";

/** The notification service's store. */
export interface NotificationStore {
  /**
   * Records the notification of a notice, in `notificationMessage`'s words; false when one for
   * its order and status was recorded before.
   */
  record(notice: Notice): Promise<boolean>;
  /**
   * Notifications oldest first, optionally for one order or one student, a batch (one read) at
   * a time: pagination, so that any number streams in bounded memory.
   */
  batches(filter?: NotificationFilter): AsyncGenerator<Notification[]>;
}

/** The notifications of `db`, its schema brought up to date. */
export async function openNotificationStore(db: Database): Promise<NotificationStore> {
  return db.engine === "postgres"
    ? await PostgresNotificationStore.open(db as PostgresDatabase)
    : await SqliteNotificationStore.open(db as SqliteDatabase);
}
