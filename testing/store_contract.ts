/**
 * Runs a store's contract suite against both engines: a throwaway SQLite database, and a
 * PostgreSQL database with a random name, created for the test and dropped after it. Test
 * support, kept out of the services' package (`@campus/shared`): the store suites beside the
 * code in shared/ and services/, the stack controller and the benchmark import it.
 * @module
 */
import postgres from "postgres";
import type { Database, Engine } from "@campus/shared/database";
import type { EventType, OutgoingEvent } from "@campus/shared/events";
import type { OutboxStore } from "@campus/shared/outbox_store";
import { PostgresDatabase } from "@campus/shared/postgres";
import { SqliteDatabase } from "@campus/shared/sqlite";

// The shared types this module's signatures use, so that its documentation stands on its own.
export type { Database, Engine, EventType, OutboxStore, OutgoingEvent };

/** The server the suites create their databases on (`TEST_POSTGRES_URL`), trust auth. */
export const TEST_POSTGRES_URL: string = Deno.env.get("TEST_POSTGRES_URL") ||
  "postgres://postgres@127.0.0.1:5432/postgres";

/**
 * The engines the store suites run on: `TEST_ENGINES` (comma separated), both by default.
 * `deno task test:unit` sets `sqlite`, and the PostgreSQL steps then show as ignored.
 */
export const TEST_ENGINES: readonly Engine[] = (Deno.env.get("TEST_ENGINES") || "sqlite,postgres")
  .split(",").map((name) => name.trim()).filter((name): name is Engine =>
    name === "sqlite" || name === "postgres"
  );

/**
 * `Deno.test` for a test that needs PostgreSQL itself: ignored (and shown so) when
 * {@linkcode TEST_ENGINES} leaves PostgreSQL out.
 */
export const postgresTest: Deno.TestIgnore = TEST_ENGINES.includes("postgres")
  ? Deno.test
  : Deno.test.ignore;

/** A database made for one test. */
export interface TestDatabase {
  /** Which engine the database runs on. */
  engine: Engine;
  /** The database, open. */
  db: Database;
  /**
   * Another process's view of the same data: a second pool on PostgreSQL, the same database on
   * SQLite (one process owns a SQLite file). Closed with the test.
   */
  replica(): Database;
}

/** A PostgreSQL database with a random name; `drop` removes it with whatever still uses it. */
export async function createPostgresDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `campus_test_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
  const admin = postgres(TEST_POSTGRES_URL, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`CREATE DATABASE ${name}`);
  } catch (err) {
    await admin.end();
    throw new Error(
      `The store suites need PostgreSQL at ${TEST_POSTGRES_URL} (set TEST_POSTGRES_URL): ${err}`,
    );
  }
  const url = new URL(TEST_POSTGRES_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    },
  };
}

/**
 * Defines test `name` with one step per engine; `fn` gets a fresh database in each.
 * @example
 * ```ts ignore
 * storeContract("record() keeps one notification per order", async ({ db }) => {
 *   const store = await openNotificationStore(db);
 *   assert.equal(await store.record(result), true);
 * });
 * ```
 */
export function storeContract(name: string, fn: (t: TestDatabase) => Promise<void>): void {
  Deno.test(name, async (t) => {
    for (const engine of ["sqlite", "postgres"] as const) {
      await t.step({
        name: engine,
        ignore: !TEST_ENGINES.includes(engine),
        fn: () => withTestDatabase(engine, fn),
      });
    }
  });
}

/** Runs `fn` with a fresh database of `engine`, closed and removed afterwards. */
export async function withTestDatabase<T>(
  engine: Engine,
  fn: (t: TestDatabase) => Promise<T>,
): Promise<T> {
  if (engine === "sqlite") {
    const db = SqliteDatabase.open(":memory:", "test");
    try {
      return await fn({ engine, db, replica: () => db });
    } finally {
      await db.close();
    }
  }
  const created = await createPostgresDatabase();
  const opened: PostgresDatabase[] = [];
  const open = () => {
    const db = PostgresDatabase.connect(created.url, { name: "store-test" });
    opened.push(db);
    return db;
  };
  try {
    return await fn({ engine, db: open(), replica: open });
  } finally {
    for (const db of opened) await db.close().catch(() => {});
    await created.drop();
  }
}

/** Takes every event waiting in `outbox`, oldest first, as a relay would. */
export async function drainOutbox(outbox: OutboxStore): Promise<OutgoingEvent[]> {
  const events: OutgoingEvent[] = [];
  while (
    await outbox.publishOldest(500, (batch) => {
      events.push(...batch);
      return Promise.resolve();
    }) > 0
  );
  return events;
}
