import assert from "node:assert/strict";
import { DEFAULT_MENU, ENV_DEFAULTS, loadAuthSecret, loadConfig, readEnv } from "./config.ts";

Deno.test("loadConfig() fills every default", () => {
  const config = loadConfig("inventory", {});
  assert.equal(config.amqpUrl, "amqp://guest:guest@127.0.0.1:5672");
  assert.equal(config.port, 5002);
  assert.equal(config.dataDir, "./data");
  assert.deepEqual(config.menu, DEFAULT_MENU);
  assert.equal(config.menu.Coffee, 100);
  assert.equal(config.testFaults, false);
  assert.deepEqual(config.amqpUrls, ["amqp://guest:guest@127.0.0.1:5672"]);
  assert.equal(config.queueType, "classic");
  assert.equal(config.databaseUrl, undefined);
  assert.equal(config.requestTimeoutMs, 10_000);
  assert.equal(config.outboxStallMs, 30_000);
  assert.equal(config.outcomeTimeoutMs, 30_000);
  assert.deepEqual(config.databaseTimeouts, {
    lockMs: 2000,
    statementMs: 10_000,
    idleInTransactionMs: 30_000,
  });
  assert.equal(config.databaseStallMs, 5000);
  assert.equal(config.tracing, false);
  assert.ok(Object.isFrozen(config));
});

Deno.test("loadConfig() reads the database's bounds; 0 turns one off", () => {
  const config = loadConfig("inventory", {
    DB_LOCK_TIMEOUT_MS: "0",
    DB_STATEMENT_TIMEOUT_MS: "60000",
    DB_IDLE_IN_TRANSACTION_TIMEOUT_MS: "5000",
    DB_STALL_MS: "2500",
  });
  assert.deepEqual(config.databaseTimeouts, {
    lockMs: 0,
    statementMs: 60_000,
    idleInTransactionMs: 5000,
  });
  assert.equal(config.databaseStallMs, 2500);
  assert.throws(() => loadConfig("inventory", { DB_LOCK_TIMEOUT_MS: "-1" }), /DB_LOCK_TIMEOUT_MS/);
  assert.throws(() => loadConfig("inventory", { DB_STALL_MS: "soon" }), /DB_STALL_MS/);
});

Deno.test("loadConfig() reads the environment", () => {
  const config = loadConfig("order", {
    PORT: "6001",
    MENU: "Tea=3, Cake = 7",
    MAX_RETRIES: "5",
    TEST_FAULTS: "on",
    REQUEST_TIMEOUT_MS: "2500",
    OUTBOX_STALL_MS: "5000",
    OUTCOME_TIMEOUT_MS: "2000",
    OTEL_DENO: "true",
  });
  assert.equal(config.outcomeTimeoutMs, 2000);
  assert.equal(config.tracing, true);
  assert.equal(config.requestTimeoutMs, 2500);
  assert.equal(config.port, 6001);
  assert.equal(config.outboxStallMs, 5000);
  assert.deepEqual({ ...config.menu }, { Tea: 3, Cake: 7 });
  assert.equal(config.maxRetries, 5);
  assert.equal(config.testFaults, true);
});

Deno.test("loadConfig() reads the nodes of a cluster, the queue type and the database", () => {
  const config = loadConfig("inventory", {
    AMQP_URL: "amqp://u:p@node1:5672, amqp://u:p@node2:5672,",
    QUEUE_TYPE: "quorum",
    DATABASE_URL: "postgres://inventory:secret@db:5432/inventory",
  });
  assert.deepEqual(config.amqpUrls, ["amqp://u:p@node1:5672", "amqp://u:p@node2:5672"]);
  assert.equal(config.amqpUrl, "amqp://u:p@node1:5672");
  assert.equal(config.queueType, "quorum");
  assert.equal(config.databaseUrl, "postgres://inventory:secret@db:5432/inventory");
});

Deno.test("a bad DATABASE_URL is named without repeating its password", () => {
  assert.throws(() => loadConfig("order", { DATABASE_URL: "mysql://root:hunter2@db/x" }), (err) => {
    assert.match(String(err), /DATABASE_URL/);
    assert.doesNotMatch(String(err), /hunter2/);
    return true;
  });
});

Deno.test("loadConfig() names each bad variable", () => {
  assert.throws(() => loadConfig("order", { PORT: "http" }), /PORT/);
  assert.throws(() => loadConfig("order", { MENU: "Tea" }), /MENU.*"Tea" is not Item=stock/);
  assert.throws(() => loadConfig("order", { AMQP_URL: "localhost" }), /AMQP_URL/);
  assert.throws(() => loadConfig("order", { AMQP_URL: "amqp://a,localhost" }), /AMQP_URL/);
  assert.throws(() => loadConfig("order", { QUEUE_TYPE: "stream" }), /QUEUE_TYPE/);
  assert.throws(() => loadConfig("order", { PREFETCH: "0" }), TypeError);
  assert.throws(() => loadConfig("order", { REQUEST_TIMEOUT_MS: "soon" }), /REQUEST_TIMEOUT_MS/);
  assert.throws(
    () => loadConfig("inventory", { MENU: "Coffee=1,coffee =2" }),
    /MENU.*"coffee" and "Coffee" are the same item/,
  );
});

Deno.test("AUTH_SECRET unset or empty leaves authentication off; ORDER_RATE_LIMIT is 60", () => {
  for (const env of [{}, { AUTH_SECRET: "" }]) {
    const config = loadConfig("order", env);
    assert.equal(config.authSecret, undefined);
    assert.equal(config.orderRateLimit, 60);
  }
  assert.equal(loadAuthSecret({}), undefined);
  assert.equal(loadAuthSecret({ AUTH_SECRET: "" }), undefined);
});

Deno.test("AUTH_SECRET and ORDER_RATE_LIMIT are read and checked", () => {
  const secret = "s".repeat(32);
  const config = loadConfig("notification", { AUTH_SECRET: secret, ORDER_RATE_LIMIT: "5" });
  assert.equal(config.authSecret, secret);
  assert.equal(config.orderRateLimit, 5);
  assert.equal(loadAuthSecret({ AUTH_SECRET: secret }), secret);
  assert.throws(() => loadConfig("order", { ORDER_RATE_LIMIT: "0" }), /ORDER_RATE_LIMIT/);
  assert.throws(() => loadConfig("order", { ORDER_RATE_LIMIT: "many" }), /ORDER_RATE_LIMIT/);
});

Deno.test("STREAMS_PER_STUDENT (5) and MAX_STREAMS (1000) are read and checked", () => {
  const defaults = loadConfig("order", {});
  assert.equal(defaults.streamsPerStudent, 5);
  assert.equal(defaults.maxStreams, 1000);
  const config = loadConfig("order", { STREAMS_PER_STUDENT: "2", MAX_STREAMS: "50" });
  assert.equal(config.streamsPerStudent, 2);
  assert.equal(config.maxStreams, 50);
  assert.throws(() => loadConfig("order", { STREAMS_PER_STUDENT: "0" }), /STREAMS_PER_STUDENT/);
  assert.throws(() => loadConfig("order", { MAX_STREAMS: "lots" }), /MAX_STREAMS/);
});

Deno.test("a short AUTH_SECRET is refused without repeating it", () => {
  for (
    const load of [
      () => loadConfig("order", { AUTH_SECRET: "hunter2" }),
      () => loadAuthSecret({ AUTH_SECRET: "hunter2" }),
    ]
  ) {
    assert.throws(load, (err) => {
      assert.match(String(err), /AUTH_SECRET.*at least 32 characters/);
      assert.doesNotMatch(String(err), /hunter2/);
      return true;
    });
  }
});

Deno.test("loadConfig() lists the secrets to mask, and never echoes a bad value", async (t) => {
  await t.step("the passwords of AMQP_URL and DATABASE_URL, and AUTH_SECRET", () => {
    const config = loadConfig("order", {
      AMQP_URL: "amqp://app:Broker-Pw-1@n1:5672,amqp://app:Broker-Pw-2@n2:5672",
      DATABASE_URL: "postgres://campus:Db-Pw-123@db:5432/order",
      AUTH_SECRET: "a-signing-key-of-some-length-0123456789",
    });
    for (
      const secret of [
        "Broker-Pw-1",
        "Broker-Pw-2",
        "Db-Pw-123",
        "a-signing-key-of-some-length-0123456789",
      ]
    ) {
      assert.ok(config.secrets.includes(secret), `${secret} is masked`);
    }
    assert.ok(Object.isFrozen(config.secrets));
  });
  await t.step("a bad URL is named, its password is not repeated", () => {
    for (
      const env of [
        { AMQP_URL: "http://app:Sekret-Pw@rabbit:5672" },
        { DATABASE_URL: "mysql://app:Sekret-Pw@db/order" },
      ]
    ) {
      assert.throws(
        () => loadConfig("order", env),
        (err: Error) =>
          err instanceof TypeError && err.message.includes(Object.keys(env)[0]) &&
          !err.message.includes("Sekret-Pw"),
      );
    }
  });
});

Deno.test("readEnv() reads only the variables it names", () => {
  const names = ["AMQP_URL", "HOST"];
  const env = readEnv(names);
  assert.deepEqual(Object.keys(env), names);
  assert.deepEqual(Object.keys(readEnv()).sort(), Object.keys(ENV_DEFAULTS).sort());
});
