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
