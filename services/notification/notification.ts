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
