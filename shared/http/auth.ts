/**
 * Who a request comes from, when `AUTH_SECRET` is set: HS256 JWTs (`npm:jose`) with the claims
 * `sub`, `role` (`student` or `staff`) and `exp`, sent as `Authorization: Bearer <token>`, or,
 * from the pages, as the same token in an HttpOnly session cookie. Without `AUTH_SECRET` no
 * {@linkcode Authenticator} exists and every route is open, as in the classic lab.
 * @module
 */
import { decodeJwt, errors, jwtVerify, SignJWT } from "jose";
import { HttpError } from "./http.ts";

export { type Access, type Caller, type Role, ROLES } from "./caller.ts";
import { type Access, type Caller, type Role, ROLES } from "./caller.ts";

/** Name of the cookie that carries the token of a page's session. */
export const SESSION_COOKIE = "campus_session";

/** Realm named in every `WWW-Authenticate` challenge. */
const REALM = "campus-food";

/** Why a request was not authenticated; each answers 401 with its own message. */
export type AuthFailure = "missing" | "malformed" | "expired" | "bad_signature" | "invalid_claims";

/**
 * A request without a valid token: 401 with a `WWW-Authenticate: Bearer` challenge (RFC 6750),
 * `error="invalid_token"` and a description unless the token is simply missing.
 */
export class AuthError extends HttpError {
  /** What was wrong with the credentials. */
  readonly failure: AuthFailure;

  /**
   * A 401 for `failure`, explained by `message`.
   * @param failure what was wrong with the credentials
   * @param message what the client reads in the body's `error` and the challenge's description
   */
  constructor(failure: AuthFailure, message: string, options?: ErrorOptions) {
    super(401, message, [{ field: "Authorization", message }], {
      ...options,
      headers: { "www-authenticate": challenge(failure, message) },
    });
    this.name = "AuthError";
    this.failure = failure;
  }
}

/** The `WWW-Authenticate` value of a failure; a description is a quoted-string, so no quotes. */
function challenge(failure: AuthFailure, message: string): string {
  if (failure === "missing") return `Bearer realm="${REALM}"`;
  const description = message.replace(/[^\x20-\x7e]|["\\]/g, "'");
  return `Bearer realm="${REALM}", error="invalid_token", error_description="${description}"`;
}

/**
 * 403 for a caller whose token is valid but does not allow the request; `field` names what
 * was refused (a body field, a query parameter, or `role`).
 */
export function forbidden(field: string, message: string): HttpError {
  return new HttpError(403, message, [{ field, message }], {
    headers: {
      "www-authenticate": `Bearer realm="${REALM}", error="insufficient_scope", ` +
        `error_description="${message.replace(/[^\x20-\x7e]|["\\]/g, "'")}"`,
    },
  });
}

/**
 * The key tokens are verified with. This is the one place that knows where keys come from:
 * for a JWKS URL later, return `createRemoteJWKSet(new URL(url))` from jose here instead
 * (`jwtVerify` takes either).
 */
function verificationKey(secret: string): Promise<CryptoKey> {
  return crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["verify"],
  );
}

/**
 * Verifies tokens signed with `AUTH_SECRET` and finds the caller of a request.
 *
 * @example Verifying a token
 * ```ts
 * import assert from "node:assert/strict";
 * import { Authenticator, signToken } from "./auth.ts";
 *
 * const secret = "a secret of at least thirty-two characters";
 * const token = await signToken(secret, { sub: "S1", role: "student", ttlSeconds: 60 });
 * const caller = await new Authenticator(secret).verify(token);
 * assert.equal(caller.sub, "S1");
 * ```
 */
export class Authenticator {
  readonly #key: Promise<CryptoKey>;

  /** Verifies tokens signed with `secret` (HS256). */
  constructor(secret: string) {
    this.#key = verificationKey(secret);
  }

  /** The caller a token names; throws {@linkcode AuthError} saying what is wrong with it. */
  async verify(token: string): Promise<Caller> {
    let payload;
    try {
      ({ payload } = await jwtVerify(token, await this.#key, {
        algorithms: ["HS256"],
        requiredClaims: ["sub", "exp"],
      }));
    } catch (err) {
      throw failureOf(token, err);
    }
    const { sub, role, exp } = payload;
    if (!ROLES.includes(role as Role)) {
      throw new AuthError(
        "invalid_claims",
        `The token's role must be ${ROLES.join(" or ")}, got ${JSON.stringify(role ?? null)}`,
      );
    }
    if (!sub) throw new AuthError("invalid_claims", "The token's sub (who it is for) is empty");
    return { sub: sub, role: role as Role, expiresAt: exp! * 1000 };
  }

  /**
   * The caller of `req`: the bearer token of its `Authorization` header, or else the token of
   * its session cookie. A cookie is sent by the browser on its own, so it counts for a request
   * that changes something (not `GET`/`HEAD`) only when it comes from a page of this origin:
   * another site cannot place orders in a signed-in student's name.
   */
  async authenticate(req: Request): Promise<Caller> {
    const header = req.headers.get("authorization");
    if (header !== null) return await this.verify(bearerToken(header));
    const cookie = cookieValue(req.headers.get("cookie"), SESSION_COOKIE);
    if (cookie === undefined) {
      throw new AuthError(
        "missing",
        "Authentication required: send Authorization: Bearer <token> " +
          "(pages sign in with POST /session)",
      );
    }
    if (req.method !== "GET" && req.method !== "HEAD" && !sameOrigin(req)) {
      throw forbidden(
        "Cookie",
        `The session cookie counts for ${req.method} only from this service's own pages; ` +
          "send Authorization: Bearer <token>",
      );
    }
    return await this.verify(cookie);
  }

  /**
   * The caller of `req` if it may call a route of `access`; throws 401 without a valid token
   * and 403 when a staff route is called with a student token.
   */
  async admit(req: Request, access: Access): Promise<Caller | undefined> {
    if (access === "public") return undefined;
    const caller = await this.authenticate(req);
    if (access === "staff" && caller.role !== "staff") {
      throw forbidden("role", `This view is for staff; the token's role is ${caller.role}`);
    }
    return caller;
  }
}

/** The token of an `Authorization: Bearer <token>` header; 401 for any other scheme. */
export function bearerToken(header: string): string {
  const match = /^Bearer[ ]+([A-Za-z0-9._~+/=-]+)\s*$/i.exec(header);
  if (!match) {
    throw new AuthError("malformed", "The Authorization header must be Bearer <token>");
  }
  return match[1];
}

/** The message that tells the client why its token was refused. */
function failureOf(token: string, err: unknown): AuthError {
  if (err instanceof errors.JWTExpired) {
    const exp = expOf(token);
    const when = exp === undefined ? "" : ` at ${new Date(exp * 1000).toISOString()}`;
    return new AuthError("expired", `The token expired${when}; get a new one`, { cause: err });
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) {
    return new AuthError(
      "bad_signature",
      "The token's signature is invalid: it was not signed with this deployment's secret",
      { cause: err },
    );
  }
  if (err instanceof errors.JWTClaimValidationFailed) {
    return new AuthError("invalid_claims", `The token's claims are invalid: ${err.message}`, {
      cause: err,
    });
  }
  if (err instanceof errors.JOSEAlgNotAllowed) {
    return new AuthError("malformed", "The token is not signed with HS256", { cause: err });
  }
  const detail = err instanceof errors.JOSEError ? `: ${err.message}` : "";
  return new AuthError("malformed", `The token is malformed (not a signed JWT)${detail}`, {
    cause: err,
  });
}

function expOf(token: string): number | undefined {
  try {
    const { exp } = decodeJwt(token);
    return typeof exp === "number" ? exp : undefined;
  } catch {
    return undefined;
  }
}

/** What a new token says. */
export interface TokenClaims {
  /** The student id, or the staff member's name. */
  sub: string;
  /** `student` or `staff`. */
  role: Role;
  /** Lifetime from now, in seconds. */
  ttlSeconds: number;
}

/**
 * A token signed with `secret` (HS256) for `sub` and `role`, valid `ttlSeconds` from `now`
 * (milliseconds since the epoch); a negative lifetime makes an expired token, for tests.
 */
export async function signToken(
  secret: string,
  { sub, role, ttlSeconds }: TokenClaims,
  now: number = Date.now(),
): Promise<string> {
  const iat = Math.floor(now / 1000);
  return await new SignJWT({ role })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(sub)
    .setIssuedAt(iat)
    .setExpirationTime(iat + Math.round(ttlSeconds))
    .sign(new TextEncoder().encode(secret));
}

/** The value of cookie `name` in a `Cookie` header, if present. */
export function cookieValue(header: string | null, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      const value = part.slice(eq + 1).trim();
      return value === "" ? undefined : value;
    }
  }
  return undefined;
}

/**
 * True when a browser says the request comes from a page of the same origin: Fetch Metadata
 * (`Sec-Fetch-Site`), or else an `Origin` whose host is the request's `Host`.
 */
function sameOrigin(req: Request): boolean {
  const site = req.headers.get("sec-fetch-site");
  if (site !== null) return site === "same-origin";
  const origin = req.headers.get("origin");
  if (!origin) return false;
  try {
    return new URL(origin).host === req.headers.get("host");
  } catch {
    return false;
  }
}

/** True when the request reached the service over https (directly or through a proxy). */
export function isHttps(req: Request): boolean {
  return new URL(req.url).protocol === "https:" ||
    req.headers.get("x-forwarded-proto")?.split(",")[0].trim() === "https";
}

/**
 * The `Authorization` value one service presents to another's API (the order service reading
 * `GET /inventory` for its pages): a staff token for `service:<name>` signed with `secret`,
 * signed again once less than a third of its lifetime is left.
 */
export function serviceCredential(
  secret: string,
  service: string,
  ttlSeconds = 300,
): () => Promise<string> {
  let current: { header: string; renewAt: number } | undefined;
  return async () => {
    const now = Date.now();
    if (!current || now >= current.renewAt) {
      const token = await signToken(secret, {
        sub: `service:${service}`,
        role: "staff",
        ttlSeconds,
      });
      current = { header: `Bearer ${token}`, renewAt: now + (ttlSeconds * 1000 * 2) / 3 };
    }
    return current.header;
  };
}
