import assert from "node:assert/strict";
import { AckWindow } from "./_ack_window.ts";

Deno.test("AckWindow acks a settled run with one multiple ack", () => {
  const sent: number[] = [];
  const window = new AckWindow<number>((n) => sent.push(n));
  const settle = [1, 2, 3].map((n) => window.track(n));
  settle.forEach((s) => s.ack());
  window.flush();
  assert.deepEqual(sent, [3]);
  assert.equal(window.unsettled, 0);
});

Deno.test("AckWindow holds acks behind a delivery still being handled", () => {
  const sent: number[] = [];
  const window = new AckWindow<number>((n) => sent.push(n));
  const [one, two, three] = [1, 2, 3].map((n) => window.track(n));
  two.ack();
  three.ack();
  window.flush();
  assert.deepEqual(sent, [], "1 is pending, so 2 and 3 wait");
  one.ack();
  window.flush();
  assert.deepEqual(sent, [3]);
});

Deno.test("AckWindow never names a rejected delivery in its ack", () => {
  const sent: number[] = [];
  const window = new AckWindow<number>((n) => sent.push(n));
  const [one, two, three] = [1, 2, 3].map((n) => window.track(n));
  one.ack();
  two.ack();
  three.rejected();
  window.flush();
  assert.deepEqual(sent, [2]);
  assert.equal(window.unsettled, 0);
  const four = window.track(4);
  four.rejected();
  window.flush();
  assert.deepEqual(sent, [2], "a run of rejects alone sends nothing");
});

Deno.test("AckWindow flushes by itself once the current turn ends", async () => {
  const sent: number[] = [];
  const window = new AckWindow<number>((n) => sent.push(n));
  window.track(1).ack();
  window.track(2).ack();
  await Promise.resolve();
  assert.deepEqual(sent, [2]);
});

Deno.test("AckWindow acks on their own the deliveries held back too long", async () => {
  const multiple: number[] = [];
  const single: number[] = [];
  const window = new AckWindow<number>((n) => multiple.push(n), (n) => single.push(n), 20);
  const [one, two, three, four] = [1, 2, 3, 4].map((n) => window.track(n));
  two.ack();
  three.rejected();
  four.ack();
  await Promise.resolve();
  assert.deepEqual([multiple, single], [[], []], "at first they wait for 1, as usual");
  await waitUntil(() => single.length > 0);
  assert.deepEqual(single, [2, 4], "then the acked ones go out alone, the rejected one never");
  assert.equal(window.unsettled, 4, "1 still holds the head");
  const five = window.track(5);
  one.ack();
  five.ack();
  window.flush();
  assert.deepEqual(multiple, [5], "the next multiple ack names neither 2 nor 4 again");
  assert.equal(window.unsettled, 0);
});

Deno.test("AckWindow without single acks only ever sends multiple ones", async () => {
  const sent: number[] = [];
  const window = new AckWindow<number>((n) => sent.push(n));
  const [one, two] = [1, 2].map((n) => window.track(n));
  two.ack();
  await Promise.resolve();
  assert.deepEqual(sent, []);
  one.ack();
  await Promise.resolve();
  assert.deepEqual(sent, [2]);
});

/** Resolves once `done` holds, checking every few ms (a timer of the window must fire first). */
async function waitUntil(done: () => boolean): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!done()) {
    if (Date.now() > deadline) throw new Error("the window never sent its single acks");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
