/**
 * A notification, apart from where it is kept: the message a student got about a status their
 * order reached. The words themselves are `notificationMessage`'s, which the student page shares.
 * @module
 */
import type { NotifiedStatus } from "@campus/shared/notification_message";

/** A message recorded for a student. */
export interface Notification {
  /** The order it is about. */
  order_id: string;
  /** The student it was sent to. */
  student_id: string;
  /** The status the student was told of; one notification per order and status. */
  outcome: NotifiedStatus;
  /** The words the student reads. */
  message: string;
  /** When it was recorded, an ISO time. */
  sent_at: string;
}

/** Filters of a listing of notifications. */
export interface NotificationFilter {
  /** Only this order's notifications. */
  order_id?: string;
  /** Only this student's notifications. */
  student_id?: string;
}

/**
 * What recording a notice did: `recorded` it; or nothing, because its order and status have a
 * notification already (`duplicate`), or because it is an inventory result for an order whose
 * student was told it is cancelled (`after_cancel`).
 */
export type RecordOutcome = "recorded" | "duplicate" | "after_cancel";

/**
 * The statuses a student is not told of once told `CANCELLED`: inventory's results. Reserved
 * before the cancel, both are true and both are told; decided after it (inventory restarted and
 * read the order before its cancel, or a late or stray result), the result would contradict it.
 */
export const UNTOLD_AFTER_CANCEL: readonly NotifiedStatus[] = ["RESERVED", "FAILED"];
