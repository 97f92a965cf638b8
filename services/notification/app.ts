/**
 * The notification service: records a confirmation or an apology for each inventory result;
 * `GET /notifications` lists them (`?order_id=`, `?student_id=`).
 * @module
 */
import { decodeInventoryResult } from "@campus/shared/events";
import { jsonArray } from "@campus/shared/http";
import type { MessageHandler } from "@campus/shared/consumer";
import type { ServiceDefinition, ServiceDeps } from "@campus/shared/service";
import { afterCommit } from "@campus/shared/sqlite";
import { SyncNotificationStore } from "./notification_store.ts";

/** Builds the notification service from its dependencies. */
export function createNotificationService(
  { db, log }: ServiceDeps,
): ServiceDefinition<"notification"> {
  const notifications = new SyncNotificationStore(db);
  const notify: MessageHandler = ({ routingKey, body }) => {
    const result = decodeInventoryResult(routingKey, body);
    const fields = { order_id: result.event.order_id, outcome: result.outcome };
    if (notifications.record(result)) {
      afterCommit(db, () => log.info("notification recorded", fields));
    } else {
      afterCommit(db, () => log.warn("duplicate result, already notified", fields));
    }
  };
  return {
    routes: [{
      method: "GET",
      path: "/notifications",
      handler: (_req, _params, url) =>
        jsonArray(notifications.pages({
          order_id: url.searchParams.get("order_id") ?? undefined,
          student_id: url.searchParams.get("student_id") ?? undefined,
        })),
    }],
    subscriptions: {
      inventory_reserved: { handle: notify },
      inventory_failed: { handle: notify },
    },
  };
}
