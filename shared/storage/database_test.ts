import assert from "node:assert/strict";
import { type Database, LockTimeout } from "./database.ts";
import { DatabaseWaits } from "./database_waits.ts";
import { PostgresDatabase } from "./postgres.ts";
import { SqliteDatabase } from "./sqlite.ts";
import {
  createPostgresDatabase,
  postgresTest,
  storeContract,
  withTestDatabase,
} from "@campus/testing/store_contract";
import { waitFor } from "../../tests/poll.ts";

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

storeContract(
  "without savepoints, nested work is part of the transaction, all or nothing",
  async ({ db }) => {
    const store = notes(db);
    await store.migrate();
    const logged: string[] = [];
    await db.transaction(async () => {
      await store.add("a");
      await db.transaction(async () => {
        await store.add("b");
        db.afterCommit(() => logged.push("b"));
      });
    }, { savepoints: false });
    assert.deepEqual(await store.all(), ["a", "b"]);
    assert.deepEqual(logged, ["b"]);

    // A nested level that fails undoes the whole transaction, even when the work catches it.
    // (PostgreSQL's driver rejects with the statement's own error, SQLite with NestedWorkFailed.)
    await assert.rejects(
      db.transaction(async () => {
        await store.add("c");
        db.afterCommit(() => logged.push("c"));
        await db.transaction(() => store.add("a")).catch(() => {}); // a duplicate key
      }, { savepoints: false }),
      (err: Error) => ["NestedWorkFailed", "PostgresError"].includes(err.name),
    );
    assert.deepEqual(await store.all(), ["a", "b"], "nothing of it was committed");
    assert.deepEqual(logged, ["b"], "none of its hooks ran");
  },
);

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

postgresTest("PostgreSQL: transactions that deadlock are run again until both commit", async () => {
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
});

postgresTest("PostgreSQL: a lock held too long ends the wait with LockTimeout", async (t) => {
  const created = await createPostgresDatabase();
  const waits = new DatabaseWaits();
  const timeouts = { lockMs: 1_000, statementMs: 5_000, idleInTransactionMs: 20_000 };
  const db = PostgresDatabase.connect(created.url, { name: "lock-test", timeouts, waits });
  const holder = PostgresDatabase.connect(created.url, { name: "holder" });
  const release = Promise.withResolvers<void>();
  let holding: Promise<unknown> | undefined;
  try {
    await db.migrate("rows", [
      "CREATE TABLE rows (name TEXT PRIMARY KEY, n INTEGER NOT NULL)",
      "INSERT INTO rows VALUES ('held', 0), ('free', 0)",
    ]);
    await t.step("every session of the pool has the bounds", async () => {
      const [row] = await db.sql`SELECT current_setting('lock_timeout') AS lock,
        current_setting('statement_timeout') AS statement,
        current_setting('idle_in_transaction_session_timeout') AS idle`;
      assert.deepEqual({ ...row }, { lock: "1s", statement: "5s", idle: "20s" });
    });
    const locked = Promise.withResolvers<void>();
    holding = holder.transaction(async () => {
      await holder.sql`SELECT n FROM rows WHERE name = 'held' FOR UPDATE`;
      locked.resolve();
      await release.promise;
    });
    await locked.promise;
    await t.step("a transaction that waits gives up with LockTimeout", async () => {
      const waiting = db.transaction(async () => {
        await db.sql`UPDATE rows SET n = n + 1 WHERE name = 'held'`;
      });
      await waitingForLock(holder, "lock-test", 0);
      assert.ok(waits.longestWaitMs() > 0, "the transaction is noted as under way");
      await assert.rejects(waiting, (err) => {
        assert.ok(err instanceof LockTimeout, `got ${err}`);
        assert.match(err.message, /lock timeout/);
        return true;
      });
      assert.equal(waits.longestWaitMs(), 0, "the transaction is no longer under way");
    });
    await t.step("a savepoint that waits gives up alone; the rest commits", async () => {
      await db.transaction(async () => {
        await db.sql`UPDATE rows SET n = n + 1 WHERE name = 'free'`;
        await assert.rejects(
          db.transaction(async () => {
            await db.sql`UPDATE rows SET n = n + 1 WHERE name = 'held'`;
          }),
          LockTimeout,
        );
      });
      const rows = await db.sql`SELECT name, n FROM rows ORDER BY name`;
      assert.deepEqual(rows.map((r) => [r.name, r.n]), [["free", 1], ["held", 0]]);
    });
    await t.step("a migration waits as long as it takes", async () => {
      const migrating = db.migrate("more", ["UPDATE rows SET n = 10 WHERE name = 'held'"]);
      await waitingForLock(holder, "lock-test", 2 * timeouts.lockMs);
      release.resolve();
      await migrating;
      const [row] = await db.sql`SELECT n FROM rows WHERE name = 'held'`;
      assert.equal(row.n, 10);
    });
  } finally {
    release.resolve();
    await holding?.catch(() => {});
    await holder.close();
    await db.close();
    await created.drop();
  }
});

/** Resolves once a session of `application` has waited for a lock for more than `ms`. */
async function waitingForLock(db: PostgresDatabase, application: string, ms: number) {
  await waitFor(async () => {
    const [{ n }] = await db.sql`SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE application_name = ${application} AND wait_event_type = 'Lock'
        AND now() - query_start > ${ms} * interval '1 millisecond'`;
    return n > 0;
  }, { what: `a session of ${application} to wait for a lock for more than ${ms} ms` });
}
