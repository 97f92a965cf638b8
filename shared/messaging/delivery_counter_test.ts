import assert from "node:assert/strict";
import { openDeliveryCounter } from "./delivery_counter.ts";
import { storeContract } from "@campus/testing/store_contract";

storeContract("bump() counts the redeliveries of each message until forget()", async ({ db }) => {
  const counter = await openDeliveryCounter(db);
  assert.equal(await counter.bump("m1"), 2, "the first redelivery is the second delivery");
  assert.equal(await counter.bump("m1"), 3);
  assert.equal(await counter.bump("m2"), 2, "each message counts alone");
  await counter.forget("m1");
  assert.equal(await counter.bump("m1"), 2);
});

storeContract("replicas share the counts of a database", async ({ db, replica }) => {
  const one = await openDeliveryCounter(db);
  const other = await openDeliveryCounter(replica());
  assert.equal(await one.bump("m1"), 2);
  assert.equal(await other.bump("m1"), 3, "a redelivery to another replica goes on counting");
});

storeContract("inHand() runs one piece of work at a time, in turn", async ({ db }) => {
  const counter = await openDeliveryCounter(db);
  const steps: string[] = [];
  let release = () => {};
  const released = new Promise<void>((resolve) => release = resolve);
  const first = counter.inHand(async () => {
    steps.push("first starts");
    await released;
    steps.push("first ends");
    throw new Error("handler failed");
  });
  const second = counter.inHand(() => {
    steps.push("second starts");
    return Promise.resolve("second");
  });
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.deepEqual(steps, ["first starts"], "the second waits for the first");
  release();
  await assert.rejects(first, /handler failed/);
  assert.equal(await second, "second", "a failure of the first does not stop the second");
  assert.deepEqual(steps, ["first starts", "first ends", "second starts"]);
});
