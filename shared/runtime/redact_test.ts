import assert from "node:assert/strict";
import { MASK, redactSecrets, redactText, redactUrl, secretsOf } from "./redact.ts";

Deno.test("redactUrl() never shows the password", async (t) => {
  await t.step("a PostgreSQL URL", () => {
    assert.equal(
      redactUrl("postgres://campus:s3cret@db:5432/order"),
      "postgres://campus:***@db:5432/order",
    );
    assert.equal(redactUrl("postgres://db/order"), "postgres://db/order");
  });
  await t.step("AMQP URLs, one or a cluster's list", () => {
    assert.equal(redactUrl("amqp://app:s3cret@rabbit:5672"), "amqp://app:***@rabbit:5672");
    assert.equal(
      redactUrl("amqp://a:one-pw@n1:5672,amqps://b:two-pw@n2"),
      "amqp://a:***@n1:5672,amqps://b:***@n2",
    );
  });
  await t.step("a password with reserved characters, or one that does not parse", () => {
    assert.equal(redactUrl("amqp://app:p%40ss%2Fw@rabbit"), "amqp://app:***@rabbit");
    assert.equal(redactUrl("not a url s3cret"), "(unreadable URL)");
  });
});

Deno.test("redactText() masks URL passwords and tokens anywhere in a text", async (t) => {
  await t.step("passwords of the URLs a message quotes, up to the authority's last @", () => {
    assert.equal(
      redactText("connect amqp://guest:Very-Secret@127.0.0.1:5672 failed; retry amqp://u:x@h2"),
      "connect amqp://guest:***@127.0.0.1:5672 failed; retry amqp://u:***@h2",
    );
    assert.equal(redactText("postgres://u:p@ss@db/x"), "postgres://u:***@db/x");
    assert.equal(
      redactText(`{"url":"postgres://u:pw@db:5432/x"}`),
      `{"url":"postgres://u:***@db:5432/x"}`,
    );
  });
  await t.step("a URL without a password is left as it is", () => {
    const text = "inventory unreachable at http://127.0.0.1:5002/inventory (user@example.org)";
    assert.equal(redactText(text), text);
  });
  await t.step("bearer tokens, ticket and token parameters, JWTs", () => {
    const jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJTMSJ9.c2lnbmF0dXJl";
    assert.equal(redactText(`authorization: Bearer ${jwt}`), "authorization: Bearer ***");
    assert.equal(redactText("GET /live?ticket=abc.def&x=1"), "GET /live?ticket=***&x=1");
    assert.equal(redactText(`cookie token=${jwt}; path=/`), "cookie token=***; path=/");
    assert.equal(redactText(`signed ${jwt} for S1`), `signed ${MASK} for S1`);
  });
});

Deno.test("secretsOf() finds the configuration's secrets in every shape a text may hold", () => {
  const secrets = secretsOf(
    ["amqp://app:p%40ss-word@rabbit:5672,amqp://app:second-pw@r2", undefined, "postgres://db/x"],
    ['signing"key-1', undefined, "ab"],
  );
  for (
    const shape of ["p%40ss-word", "p@ss-word", "second-pw", 'signing"key-1', 'signing\\"key-1']
  ) {
    assert.ok(secrets.includes(shape), `${shape} is among ${secrets.join(" ")}`);
  }
  assert.ok(!secrets.includes("ab"), "a two-letter value would mask half the log");
  assert.deepEqual(secretsOf([undefined, "amqp://rabbit"]), []);
});

Deno.test("redactSecrets() masks the known secrets wherever they turn up", () => {
  const secrets = secretsOf(["postgres://postgres:Distinctive-Pw-123@db/x"], ["key-of-32-chars"]);
  assert.equal(
    redactSecrets(
      `auth failed for password "Distinctive-Pw-123" (key key-of-32-chars) at postgres://postgres:Distinctive-Pw-123@db/x`,
      secrets,
    ),
    `auth failed for password "***" (key ***) at postgres://postgres:***@db/x`,
  );
  const line = JSON.stringify({ msg: "x", error: 'said "Distinctive-Pw-123"' });
  assert.ok(!redactSecrets(line, secrets).includes("Distinctive-Pw-123"));
});
