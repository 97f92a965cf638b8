import assert from "node:assert/strict";
import { Authenticator, cookieValue, SESSION_COOKIE, signToken } from "@campus/shared/auth";
import { endedSessionCookie, sessionCookie } from "./session.ts";

const SECRET = "unit-test-secret-of-at-least-32-characters";
const auth = new Authenticator(SECRET);
const student = () => signToken(SECRET, { sub: "S1", role: "student", ttlSeconds: 60 });

Deno.test("sessionCookie() is HttpOnly, SameSite=Strict, Secure over https, and lasts the token", async () => {
  const token = await student();
  const caller = await auth.verify(token);
  const cookie = sessionCookie(token, caller, false);
  assert.match(cookie, new RegExp(`^${SESSION_COOKIE}=${token.replaceAll(".", "\\.")}; `));
  assert.match(cookie, /; HttpOnly; SameSite=Strict$/);
  const maxAge = Number(/Max-Age=(\d+)/.exec(cookie)?.[1]);
  assert.ok(maxAge > 50 && maxAge <= 60, cookie);
  assert.match(sessionCookie(token, caller, true), /; Secure$/);
  assert.match(endedSessionCookie(false), /Max-Age=0/);
  assert.equal(cookieValue(`a=1; ${SESSION_COOKIE}=${token}`, SESSION_COOKIE), token);
  assert.equal(cookieValue(`a=1`, SESSION_COOKIE), undefined);
});
