import assert from "node:assert/strict";
import { openDatabase, SqliteDatabase } from "./sqlite.ts";

function setup() {
  const db = SqliteDatabase.open(":memory:", "test");
  db.db.exec("CREATE TABLE t (v TEXT)");
  const insert = db.db.prepare("INSERT INTO t VALUES (?)");
  const ran: string[] = [];
  /** Inserts `v` and asks to hear of it after the commit, as a store's write does. */
  const write = (v: string) =>
    db.write(() => {
      insert.run(v);
      db.afterCommit(() => ran.push(v));
    });
  const rows = () => db.db.prepare("SELECT v FROM t").all().map((r) => r.v);
  return { db, write, ran, rows };
}

Deno.test("afterCommit() runs its hooks once the outermost transaction committed", async () => {
  const { db, write, ran } = setup();
  await db.transaction(async () => {
    await write("a");
    await db.transaction(() => write("b"));
    assert.deepEqual(ran, [], "nothing runs before the commit, not even a released savepoint");
  });
  assert.deepEqual(ran, ["a", "b"]);
});

Deno.test("afterCommit() drops the hooks of work that was rolled back", async (t) => {
  await t.step(
    "a savepoint rolled back loses its hooks, the transaction keeps the rest",
    async () => {
      const { db, write, ran, rows } = setup();
      await db.transaction(async () => {
        await write("kept");
        await assert.rejects(db.transaction(async () => {
          await write("undone");
          throw new Error("one message failed");
        }));
        await assert.rejects(db.write(() => {
          db.afterCommit(() => ran.push("undone too"));
          throw new Error("a failing write");
        }));
      });
      assert.deepEqual(ran, ["kept"]);
      assert.deepEqual(rows(), ["kept"]);
    },
  );
  await t.step("a transaction rolled back runs none", async () => {
    const { db, write, ran } = setup();
    await assert.rejects(db.transaction(async () => {
      await write("a");
      await db.transaction(() => write("b"));
      throw new Error("batch failed");
    }));
    assert.deepEqual(ran, []);
    await db.transaction(() => write("next"));
    assert.deepEqual(ran, ["next"], "a later transaction starts clean");
  });
});

Deno.test("afterCommit() outside a transaction runs at once; a failing hook changes nothing", async () => {
  const { db, write, ran, rows } = setup();
  await write("alone");
  assert.deepEqual(ran, ["alone"]);
  await db.transaction(async () => {
    db.afterCommit(() => {
      throw new Error("hook failed");
    });
    await write("after");
  });
  assert.deepEqual(ran, ["alone", "after"], "the hooks after a failing one still run");
  assert.deepEqual(rows(), ["alone", "after"], "the work is committed");
});

Deno.test("openDatabase() flushes every commit to disk (WAL, synchronous=FULL)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "campus-sqlite-" });
  try {
    const db = openDatabase(dir, "probe");
    // 2 is FULL: a commit that returned survives a power loss, not only a crash.
    assert.equal(db.prepare("PRAGMA synchronous").get()?.synchronous, 2);
    assert.equal(db.prepare("PRAGMA journal_mode").get()?.journal_mode, "wal");
    db.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
