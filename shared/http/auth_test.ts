import assert from "node:assert/strict";
import { SignJWT } from "jose";
import { Authenticator, AuthError, SESSION_COOKIE, signToken } from "./auth.ts";
import { HttpError } from "./http.ts";

const SECRET = "unit-test-secret-of-at-least-32-characters";
const auth = new Authenticator(SECRET);
const student = () => signToken(SECRET, { sub: "S1", role: "student", ttlSeconds: 60 });

/** The failure `verify` or `authenticate` rejects with. */
async function refusal(work: Promise<unknown>): Promise<HttpError> {
  try {
    await work;
  } catch (err) {
    assert.ok(err instanceof HttpError, String(err));
    return err;
  }
  assert.fail("expected a refusal");
}

function bearer(token: string, init: RequestInit = {}): Request {
  return new Request("http://campus.test/orders", {
    ...init,
    headers: { authorization: `Bearer ${token}`, ...init.headers },
  });
}

Deno.test("Authenticator.verify() returns the caller of a good token", async () => {
  const caller = await auth.verify(await student());
  assert.equal(caller.sub, "S1");
  assert.equal(caller.role, "student");
  assert.ok(caller.expiresAt > Date.now() && caller.expiresAt <= Date.now() + 60_000);
});

Deno.test("Authenticator.verify() tells each bad token apart", async (t) => {
  const cases: [string, () => Promise<string>, string, RegExp][] = [
    [
      "expired",
      () => signToken(SECRET, { sub: "S1", role: "student", ttlSeconds: -120 }),
      "expired",
      /^The token expired at \d{4}-\d\d-\d\dT.*; get a new one$/,
    ],
    [
      "signed with another secret",
      () => signToken(`${SECRET}-other`, { sub: "S1", role: "student", ttlSeconds: 60 }),
      "bad_signature",
      /signature is invalid/,
    ],
    ["not a JWT", () => Promise.resolve("not-a-token"), "malformed", /malformed/],
    [
      "an unknown role",
      () => signToken(SECRET, { sub: "S1", role: "admin" as "staff", ttlSeconds: 60 }),
      "invalid_claims",
      /role must be student or staff, got "admin"/,
    ],
    [
      "no exp",
      () =>
        new SignJWT({ role: "staff" }).setProtectedHeader({ alg: "HS256" }).setSubject("x")
          .sign(new TextEncoder().encode(SECRET)),
      "invalid_claims",
      /"exp"/,
    ],
    [
      "another algorithm",
      () =>
        new SignJWT({ role: "staff" }).setProtectedHeader({ alg: "HS512" }).setSubject("x")
          .setExpirationTime("1h").sign(new TextEncoder().encode(SECRET)),
      "malformed",
      /not signed with HS256/,
    ],
  ];
  for (const [name, make, failure, message] of cases) {
    await t.step(name, async () => {
      const err = await refusal(auth.verify(await make()));
      assert.ok(err instanceof AuthError);
      assert.equal(err.failure, failure);
      assert.equal(err.status, 401);
      assert.match(err.message, message);
      const challenge = err.headers?.["www-authenticate"] ?? "";
      assert.match(challenge, /^Bearer realm="campus-food", error="invalid_token", /);
      assert.match(challenge, /error_description="[^"]+"$/);
    });
  }
});

Deno.test("Authenticator.authenticate() reads the header, else the session cookie", async (t) => {
  const token = await student();
  await t.step("a bearer token", async () => {
    assert.equal((await auth.authenticate(bearer(token))).sub, "S1");
  });
  await t.step("no credentials: 401 with a bare challenge", async () => {
    const err = await refusal(auth.authenticate(new Request("http://campus.test/orders")));
    assert.equal(err.status, 401);
    assert.match(err.message, /Authentication required/);
    assert.equal(err.headers?.["www-authenticate"], 'Bearer realm="campus-food"');
  });
  await t.step("another scheme", async () => {
    const req = new Request("http://campus.test/", { headers: { authorization: "Basic eDp5" } });
    const err = await refusal(auth.authenticate(req));
    assert.match(err.message, /must be Bearer <token>/);
  });
  await t.step("the cookie on a GET", async () => {
    const req = new Request("http://campus.test/events", {
      headers: { cookie: `other=1; ${SESSION_COOKIE}=${token}` },
    });
    assert.equal((await auth.authenticate(req)).sub, "S1");
  });
  await t.step("the cookie on a POST from this origin's page", async () => {
    const req = new Request("http://campus.test/order", {
      method: "POST",
      headers: { cookie: `${SESSION_COOKIE}=${token}`, "sec-fetch-site": "same-origin" },
    });
    assert.equal((await auth.authenticate(req)).sub, "S1");
  });
  await t.step("the cookie on a POST from another site: 403", async () => {
    const variants: Record<string, string>[] = [
      { "sec-fetch-site": "cross-site" },
      { origin: "http://evil.test" },
      {},
    ];
    for (const headers of variants) {
      const req = new Request("http://campus.test/order", {
        method: "POST",
        headers: { cookie: `${SESSION_COOKIE}=${token}`, host: "campus.test", ...headers },
      });
      const err = await refusal(auth.authenticate(req));
      assert.equal(err.status, 403, JSON.stringify(headers));
    }
  });
});

Deno.test("Authenticator.admit() keeps staff routes for staff", async () => {
  const staff = await signToken(SECRET, { sub: "chef", role: "staff", ttlSeconds: 60 });
  assert.equal((await auth.admit(bearer(staff), "staff"))?.role, "staff");
  const err = await refusal(auth.admit(bearer(await student()), "staff"));
  assert.equal(err.status, 403);
  assert.match(err.message, /for staff; the token's role is student/);
  assert.match(err.headers?.["www-authenticate"] ?? "", /error="insufficient_scope"/);
  assert.equal(await auth.admit(new Request("http://campus.test/health"), "public"), undefined);
});
