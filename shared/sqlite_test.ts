import assert from "node:assert/strict";
import { afterCommit, openDatabase, transaction } from "./sqlite.ts";

function setup() {
  const db = openDatabase(":memory:", "test");
  db.exec("CREATE TABLE t (v TEXT)");
  const insert = db.prepare("INSERT INTO t VALUES (?)");
  const ran: string[] = [];
  /** Inserts `v` and asks to hear of it after the commit. */
  const write = (v: string) => {
    insert.run(v);
    afterCommit(db, () => ran.push(v));
  };
  return { db, write, ran };
}

Deno.test("afterCommit() runs its hooks once the outermost transaction committed", () => {
  const { db, write, ran } = setup();
  transaction(db, () => {
    write("a");
    transaction(db, () => write("b"));
    assert.deepEqual(ran, [], "nothing runs before the commit, not even a released savepoint");
  });
  assert.deepEqual(ran, ["a", "b"]);
});

Deno.test("afterCommit() drops the hooks of work that was rolled back", async (t) => {
  await t.step("a savepoint rolled back loses its hooks, the transaction keeps the rest", () => {
    const { db, write, ran } = setup();
    transaction(db, () => {
      write("kept");
      assert.throws(() =>
        transaction(db, () => {
          write("undone");
          throw new Error("handler failed");
        })
      );
    });
    assert.deepEqual(ran, ["kept"]);
    assert.deepEqual(db.prepare("SELECT v FROM t").all().map((r) => r.v), ["kept"]);
  });
  await t.step("a transaction rolled back runs none", () => {
    const { db, write, ran } = setup();
    assert.throws(() =>
      transaction(db, () => {
        write("a");
        transaction(db, () => write("b"));
        throw new Error("batch failed");
      })
    );
    assert.deepEqual(ran, []);
    transaction(db, () => write("next"));
    assert.deepEqual(ran, ["next"], "a later transaction starts clean");
  });
});

Deno.test("afterCommit() outside a transaction runs at once; a failing hook changes nothing", () => {
  const { db, write, ran } = setup();
  write("alone");
  assert.deepEqual(ran, ["alone"]);
  transaction(db, () => {
    afterCommit(db, () => {
      throw new Error("hook failed");
    });
    write("after");
  });
  assert.deepEqual(ran, ["alone", "after"], "the hooks after a failing one still run");
  assert.equal(db.prepare("SELECT count(*) AS n FROM t").get()?.n, 2, "the work is committed");
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
