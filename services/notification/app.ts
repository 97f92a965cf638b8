/**
 * The notification service: records a confirmation or an apology for each inventory result;
 * `GET /notifications` lists them (`?order_id=`, `?student_id=`); a student's token lists only
 * that student's.
 * @module
 */
import { type Caller, forbidden } from "@campus/shared/auth";
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
      handler: (_req, _params, url, caller) =>
        jsonArray(notifications.batches({
          order_id: url.searchParams.get("order_id") ?? undefined,
          student_id: studentOf(url.searchParams, caller),
        })),
    }],
    subscriptions: {
      inventory_reserved: { handle: notify },
      inventory_failed: { handle: notify },
    },
  };
}

/** The `student_id` to list; a student token may name only its own, and gets it by default. */
function studentOf(params: URLSearchParams, caller?: Caller): string | undefined {
  const student = params.get("student_id") ?? undefined;
  if (caller?.role !== "student") return student;
  if (student !== undefined && student !== caller.sub) {
    throw forbidden(
      "student_id",
      `student_id must be your own (${caller.sub}): a student token sees only its own ` +
        "notifications",
    );
  }
  return caller.sub;
}
