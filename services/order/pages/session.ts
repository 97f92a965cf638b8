/**
 * Sessions of the pages while authentication is on. A browser cannot put a bearer token on a
 * page load or an `EventSource`, so a page hands the token over once, `POST /session` with
 * `Authorization: Bearer <token>`, and gets it back as an HttpOnly, SameSite=Strict cookie that
 * every later request of the page carries, the event streams included.
 *
 * Why a cookie and not a short-lived ticket in the stream's URL: an `EventSource` reconnects by
 * itself with the same URL (after a network blip, a service restart), which a single-use ticket
 * would refuse; the cookie holds the same stateless token, so any replica verifies it without
 * shared state; and the token never appears in a URL, where access logs and history keep it.
 * Cross-site requests cannot use it (SameSite=Strict, and the cookie counts for `POST` only
 * from this origin: shared/auth.ts), and scripts cannot read it (HttpOnly).
 * @module
 */
import {
  type Authenticator,
  AuthError,
  bearerToken,
  type Caller,
  isHttps,
  SESSION_COOKIE,
} from "@campus/shared/auth";
import { json, type Route } from "@campus/shared/http";

/** What `GET` and `POST /session` answer. */
export type SessionView =
  | { auth: "off" }
  | { auth: "on"; signed_in: true; sub: string; role: Caller["role"]; expires_at: string }
  | { auth: "on"; signed_in: false; error: string };

const NO_STORE = { "cache-control": "no-store" };

/** `GET /session`, `POST /session` (sign in) and `DELETE /session` (sign out). */
export function sessionRoutes(auth: Authenticator | undefined): Route[] {
  return [
    {
      method: "GET",
      path: "/session",
      access: "public",
      handler: async (req) => {
        if (!auth) return json({ auth: "off" } satisfies SessionView, 200, NO_STORE);
        try {
          return json(signedIn(await auth.authenticate(req)), 200, NO_STORE);
        } catch (err) {
          if (!(err instanceof AuthError)) throw err;
          const view: SessionView = { auth: "on", signed_in: false, error: err.message };
          return json(view, 200, NO_STORE);
        }
      },
    },
    {
      method: "POST",
      path: "/session",
      access: "public",
      handler: async (req) => {
        if (!auth) return json({ auth: "off" } satisfies SessionView, 200, NO_STORE);
        const header = req.headers.get("authorization");
        if (header === null) {
          throw new AuthError(
            "missing",
            "Send the token to start a session: POST /session with Authorization: Bearer <token>",
          );
        }
        const token = bearerToken(header);
        const caller = await auth.verify(token);
        return json(signedIn(caller), 200, {
          ...NO_STORE,
          "set-cookie": sessionCookie(token, caller, isHttps(req)),
        });
      },
    },
    {
      method: "DELETE",
      path: "/session",
      access: "public",
      handler: (req) =>
        new Response(null, {
          status: 204,
          headers: { "set-cookie": endedSessionCookie(isHttps(req)) },
        }),
    },
  ];
}

function signedIn(caller: Caller): SessionView {
  return {
    auth: "on",
    signed_in: true,
    sub: caller.sub,
    role: caller.role,
    expires_at: new Date(caller.expiresAt).toISOString(),
  };
}

/**
 * The `Set-Cookie` value that keeps `token` as a page's session until `caller`'s token
 * expires: HttpOnly (scripts never read it), SameSite=Strict (no other site's request carries
 * it), Secure when the page was served over https.
 */
export function sessionCookie(token: string, caller: Caller, secure: boolean): string {
  const maxAge = Math.max(0, Math.floor((caller.expiresAt - Date.now()) / 1000));
  return cookieText(token, maxAge, secure);
}

/** The `Set-Cookie` value that ends a page's session. */
export function endedSessionCookie(secure: boolean): string {
  return cookieText("", 0, secure);
}

function cookieText(value: string, maxAge: number, secure: boolean): string {
  return `${SESSION_COOKIE}=${value}; Max-Age=${maxAge}; Path=/; HttpOnly; SameSite=Strict` +
    (secure ? "; Secure" : "");
}
