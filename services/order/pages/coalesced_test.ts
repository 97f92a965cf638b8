import assert from "node:assert/strict";
import { Coalesced } from "./coalesced.ts";
import { waitFor } from "../../../tests/poll.ts";

Deno.test("run() during a run makes one more run, shared by every caller meanwhile", async () => {
  const finish: (() => void)[] = [];
  let runs = 0;
  const work = new Coalesced(async () => {
    const n = ++runs;
    await new Promise<void>((resolve) => finish.push(resolve));
    return n;
  }, (err) => assert.fail(`no run fails here: ${err}`));
  const first = work.run();
  const second = work.run();
  const third = work.run();
  assert.equal(second, third, "the callers during a run share one promise");
  await waitFor(() => finish.length === 1, { what: "the first run to start" });
  finish.shift()!();
  await waitFor(() => finish.length === 1, { what: "one more run after the first" });
  finish.shift()!();
  assert.deepEqual(await Promise.all([first, second, third]), [2, 2, 2]);
  assert.equal(runs, 2);
});

Deno.test("soon() runs once for the requests within its delay; cancel() drops it", async () => {
  let runs = 0;
  const work = new Coalesced(
    () => Promise.resolve(++runs),
    (err) => assert.fail(`no run fails here: ${err}`),
  );
  work.soon(10);
  work.soon(10);
  await waitFor(() => runs === 1, { what: "one run after the delay" });
  work.soon(10_000);
  work.cancel();
  await work.run();
  assert.equal(runs, 2, "the cancelled request never ran; this one did");
});

Deno.test("a failed run asked for soon() goes to onError, and later runs go on", async () => {
  const failures: unknown[] = [];
  let runs = 0;
  const work = new Coalesced(() => {
    runs++;
    return runs === 1 ? Promise.reject(new Error("the database refuses connections")) : (
      Promise.resolve(runs)
    );
  }, (err) => failures.push(err));
  work.soon(1);
  await waitFor(() => failures.length === 1, { what: "the failed run to reach onError" });
  assert.match(String(failures[0]), /the database refuses connections/);
  assert.equal(await work.run(), 2, "the next run works");
});
