/**
 * The notification service: records what a student is told of their order, once per order and
 * status: the inventory result (a confirmation or an apology), a cancel, food ready to collect,
 * food that expired. `GET /notifications` lists them (`?order_id=`, `?student_id=`); a student's
 * token lists only that student's.
 * @module
 */
import { type Caller, forbidden } from "@campus/shared/auth";
import { jsonArray } from "@campus/shared/http";
import type { MessageHandler } from "@campus/shared/consumer";
import type { ServiceDefinition, ServiceDeps } from "@campus/shared/service";
import { openNotificationStore } from "./notification_store.ts";
import { type OrderUpdate, readInventoryResult, readOrderUpdate } from "./order_update.ts";

/** Builds the notification service from its dependencies. */
export async function createNotificationService(
  { db, log }: ServiceDeps,
): Promise<ServiceDefinition<"notification">> {
  const notifications = await openNotificationStore(db);
  /** A handler that reads each message with `read` and records its notice, if it has one. */
  const notify =
    (read: (routingKey: string, body: unknown) => OrderUpdate): MessageHandler =>
    async ({ routingKey, body }) => {
      const { order_id, status, notice } = read(routingKey, body);
      if (!notice) {
        db.afterCommit(() => log.debug("no notification for this status", { order_id, status }));
        return;
      }
      const fields = { order_id, outcome: status };
      await notifications.record(notice, (recorded) => {
        if (recorded === "recorded") {
          log.info("notification recorded", fields);
        } else if (recorded === "after_cancel") {
          // Inventory decided after the cancel (it restarted and read the order first), or a
          // late or stray result: the student was told CANCELLED, and that stands.
          log.info("result after cancel, not told", fields);
        } else {
          // A redelivery, a replay, or a status reached again (a recalled order made READY
          // twice).
          log.warn("duplicate event, already notified", fields);
        }
      });
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
      inventory_reserved: { handle: notify(readInventoryResult) },
      inventory_failed: { handle: notify(readInventoryResult) },
      order_updates: { handle: notify(readOrderUpdate) },
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
