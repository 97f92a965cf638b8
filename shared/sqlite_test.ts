import assert from "node:assert/strict";
import { openDatabase } from "./sqlite.ts";

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
