/**
 * The notification service: records a confirmation or an apology for each inventory result;
 * `GET /notifications` lists them (`?order_id=`, `?student_id=`).
 * @module
 */
import { decodeInventoryResult } from "@campus/shared/events";
import { jsonArray } from "@campus/shared/http";
import type { MessageHandler } from "@campus/shared/consumer";
import type { ServiceDefinition, ServiceDeps } from "@campus/shared/service";
import { openNotificationStore } from "./notification_store.ts";

/** Builds the notification service from its dependencies. */
export async function createNotificationService(
  { db, log }: ServiceDeps,
): Promise<ServiceDefinition<"notification">> {
  const notifications = await openNotificationStore(db);
  const notify: MessageHandler = async ({ routingKey, body }) => {
    const result = decodeInventoryResult(routingKey, body);
    const fields = { order_id: result.event.order_id, outcome: result.outcome };
    if (await notifications.record(result)) {
      db.afterCommit(() => log.info("notification recorded", fields));
    } else {
      db.afterCommit(() => log.warn("duplicate result, already notified", fields));
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
