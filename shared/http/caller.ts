/**
 * Who calls a request, as the HTTP layer needs to know it: the caller a verified token names, and
 * the access a route asks for. Tokens themselves are `auth.ts`'s concern.
 * @module
 */

/** The roles a token may carry. */
export const ROLES = ["student", "staff"] as const;

/** `student` (sees and places their own orders) or `staff` (sees everything, the board). */
export type Role = typeof ROLES[number];

/** The caller of a request, from a verified token. */
export interface Caller {
  /** The student id, or the staff member's name (the token's `sub`). */
  sub: string;
  /** The token's `role`. */
  role: Role;
  /** When the token expires, in milliseconds since the epoch (its `exp`). */
  expiresAt: number;
}

/**
 * Who may call a route: anyone (`public`: the page files, `/health`, `/ready`, `/metrics`),
 * any caller with a valid token (`signed_in`, the default), or staff only (`staff`).
 */
export type Access = "public" | "signed_in" | "staff";
