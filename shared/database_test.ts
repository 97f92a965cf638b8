import assert from "node:assert/strict";
import type { Database } from "./database.ts";
import type { PostgresDatabase } from "./postgres.ts";
import { SqliteDatabase } from "./sqlite.ts";
import { storeContract, TEST_ENGINES, withTestDatabase } from "./store_testing.ts";

/** A tiny store over a `notes` table, written once per engine, for the tests below. */
function notes(db: Database) {
  const migrate = () => db.migrate("notes", ["CREATE TABLE notes (text TEXT PRIMARY KEY)"]);
  if (db instanceof SqliteDatabase) {
    return {
      migrate,
      add: (text: string) =>
        db.write(() => db.db.prepare("INSERT INTO notes VALUES (?)").run(text)).then(() => {}),
      all: () =>
        db.read(() => db.db.prepare("SELECT text FROM notes ORDER BY text").all())
          .then((rows) => rows.map((r) => String(r.text))),
    };
  }
  const pg = db as PostgresDatabase;
  return {
    migrate,
    add: async (text: string) => {
      await pg.sql`INSERT INTO notes VALUES (${text})`;
    },
    all: async () => (await pg.sql`SELECT text FROM notes ORDER BY text`).map((r) => r.text),
  };
}

storeContract("transaction() commits together and rolls back together", async ({ db }) => {
  const store = notes(db);
  await store.migrate();
  await db.transaction(async () => {
    await store.add("a");
    await store.add("b");
  });
  await assert.rejects(
    db.transaction(async () => {
      await store.add("c");
      throw new Error("changed my mind");
    }),
    /changed my mind/,
  );
  assert.deepEqual(await store.all(), ["a", "b"]);
});

storeContract("a nested transaction is a savepoint of the one around it", async ({ db }) => {
  const store = notes(db);
  await store.migrate();
  const logged: string[] = [];
  await db.transaction(async () => {
    await store.add("kept");
    db.afterCommit(() => logged.push("kept"));
    await assert.rejects(db.transaction(async () => {
      await store.add("undone");
      db.afterCommit(() => logged.push("undone"));
      await store.add("kept"); // a duplicate key fails this level only
    }));
    await db.transaction(async () => {
      await store.add("also kept");
      db.afterCommit(() => logged.push("also kept"));
    });
    assert.deepEqual(logged, [], "no hook runs before the outermost commit");
  });
  assert.deepEqual(await store.all(), ["also kept", "kept"]);
  assert.deepEqual(logged, ["kept", "also kept"]);
});

storeContract("afterCommit() outside a transaction runs at once", async ({ db }) => {
  let ran = false;
  db.afterCommit(() => ran = true);
  assert.equal(ran, true);
  await Promise.resolve();
});

storeContract("migrate() applies each step once, in order", async ({ db, replica }) => {
  const v1 = ["CREATE TABLE items (name TEXT PRIMARY KEY)"];
  const v2 = [...v1, "ALTER TABLE items ADD COLUMN price INTEGER"];
  await db.migrate("items", v1);
  await db.migrate("items", v1);
  // Replicas starting together with a newer version.
  await Promise.all([db.migrate("items", v2), replica().migrate("items", v2)]);
  await db.migrate("items", v2);
  await db.transaction(async () => {
    if (db instanceof SqliteDatabase) {
      await db.write(() => db.db.exec("INSERT INTO items (name, price) VALUES ('tea', 2)"));
    } else {
      await (db as PostgresDatabase).sql`INSERT INTO items (name, price) VALUES ('tea', 2)`;
    }
  });
});

Deno.test("SQLite: a read outside a transaction waits until the transaction ended", async () => {
  const db = SqliteDatabase.open(":memory:", "test");
  const store = notes(db);
  await store.migrate();
  let release!: () => void;
  const held = new Promise<void>((resolve) => release = resolve);
  const writing = db.transaction(async () => {
    await store.add("uncommitted");
    await held;
  });
  const ended: string[] = [];
  const reading = store.all().then((rows) => {
    ended.push("read");
    return rows;
  });
  // Everything ready to run runs before this timer fires: a read that did not wait is done.
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(ended.length, 0, "the read waits while the transaction is open");
  writing.then(() => ended.push("committed"));
  release();
  assert.deepEqual(await reading, ["uncommitted"]);
  await writing;
  assert.deepEqual(ended, ["committed", "read"], "the read ended after the commit");
  await db.close();
});

Deno.test({
  name: "PostgreSQL: transactions that deadlock are run again until both commit",
  ignore: !TEST_ENGINES.includes("postgres"),
  fn: async () => {
    await withTestDatabase("postgres", async ({ db, replica }) => {
      const pg = db as PostgresDatabase;
      await pg.migrate("counters", [
        "CREATE TABLE counters (name TEXT PRIMARY KEY, n INTEGER NOT NULL)",
        "INSERT INTO counters VALUES ('a', 0), ('b', 0)",
      ]);
      const other = replica() as PostgresDatabase;
      let meet!: () => void;
      const bothLocked = new Promise<void>((resolve) => meet = resolve);
      let locked = 0;
      const bump = (target: PostgresDatabase, first: string, second: string) =>
        target.transaction(async () => {
          await target.sql`UPDATE counters SET n = n + 1 WHERE name = ${first}`;
          if (++locked === 2) meet();
          await bothLocked;
          await target.sql`UPDATE counters SET n = n + 1 WHERE name = ${second}`;
        });
      await Promise.all([bump(pg, "a", "b"), bump(other, "b", "a")]);
      const rows = await pg.sql`SELECT name, n FROM counters ORDER BY name`;
      assert.deepEqual(rows.map((r) => [r.name, r.n]), [["a", 2], ["b", 2]]);
    });
  },
});
