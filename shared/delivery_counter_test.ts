import assert from "node:assert/strict";
import { openDeliveryCounter } from "./delivery_counter.ts";
import { storeContract } from "./store_testing.ts";

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
