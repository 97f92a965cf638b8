import assert from "node:assert/strict";
import { WalFlush } from "./_wal_flush.ts";
import { waitFor } from "../../tests/poll.ts";

/** A WalFlush on a real file whose flushes wait until the test lets each one finish. */
async function setup() {
  const dir = await Deno.makeTempDir({ prefix: "campus-wal-" });
  const path = `${dir}/probe.db-wal`;
  await Deno.writeTextFile(path, "log");
  const started: (() => void)[] = [];
  const flush = new WalFlush(path, async (file) => {
    await new Promise<void>((resolve) => started.push(resolve));
    await file.syncData();
  });
  const finishNext = async () => {
    await waitFor(() => started.length > 0, { what: "a flush to start" });
    started.shift()!();
  };
  return {
    flush,
    started,
    finishNext,
    async [Symbol.asyncDispose]() {
      await flush.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test("flush() waits for a flush that starts after the call, shared by later callers", async () => {
  await using t = await setup();
  const order: string[] = [];
  const first = t.flush.flush(t.flush.committed()).then(() => order.push("first"));
  // These commit while the first flush runs, which started before their writes.
  const second = t.flush.flush(t.flush.committed()).then(() => order.push("second"));
  const third = t.flush.flush(t.flush.committed()).then(() => order.push("third"));
  await t.finishNext();
  await first;
  assert.deepEqual(order, ["first"], "the later callers wait for the next flush");
  await t.finishNext();
  await Promise.all([second, third]);
  assert.deepEqual(order, ["first", "second", "third"]);
  assert.equal(t.started.length, 0, "two flushes served three callers");
  await t.flush.flush();
  assert.equal(t.started.length, 0, "nothing new to flush: no flush at all");
});

Deno.test("flush() of a commit the running flush covers shares that flush", async () => {
  await using t = await setup();
  const commit = t.flush.committed();
  const running = t.flush.flush(commit);
  const again = t.flush.flush(commit);
  await t.finishNext();
  await Promise.all([running, again]);
  assert.equal(t.started.length, 0, "one flush for both");
});

Deno.test("a failed flush rejects its callers and the next one runs again", async () => {
  const dir = await Deno.makeTempDir({ prefix: "campus-wal-" });
  const flush = new WalFlush(`${dir}/missing.db-wal`);
  await assert.rejects(flush.flush(flush.committed()), Deno.errors.NotFound);
  await Deno.writeTextFile(`${dir}/missing.db-wal`, "log");
  await flush.flush();
  await flush.close();
  await assert.rejects(flush.flush(flush.committed()), /database is closed/);
  await Deno.remove(dir, { recursive: true });
});
