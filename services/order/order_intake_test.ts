import assert from "node:assert/strict";
import { MAX_GROUP, OrderIntake } from "./order_intake.ts";
import type { NewOrder, Order, Placement } from "./order.ts";
import type { OrderStore } from "./order_store.ts";

/** A store that records each group it is given and places every order of it. */
function recordingStore() {
  const groups: string[][] = [];
  const store = {
    placeAll(orders: readonly NewOrder[]): Promise<Placement[]> {
      groups.push(orders.map((o) => o.request.student_id));
      return Promise.resolve(orders.map((o) => ({
        kind: "placed" as const,
        order: { ...o.request, order_id: o.request.student_id } as unknown as Order,
      })));
    },
  } as unknown as OrderStore;
  return { store, groups };
}

const request = (n: number): NewOrder => ({
  request: { item: "Coffee", qty: 1, student_id: `S${n}`, lines: [{ item: "Coffee", qty: 1 }] },
});

Deno.test("OrderIntake commits at most MAX_GROUP orders at a time, oldest first", async () => {
  const { store, groups } = recordingStore();
  const intake = new OrderIntake(store);
  const count = 2 * MAX_GROUP + 7;
  const placing = Array.from({ length: count }, (_, n) => intake.place(request(n)));
  assert.equal(intake.pending, count, "all wait for the first commit");
  const placed = await Promise.all(placing);
  assert.deepEqual(groups.map((g) => g.length), [MAX_GROUP, MAX_GROUP, 7]);
  assert.deepEqual(groups.flat(), placed.map((_, n) => `S${n}`), "in arrival order");
  assert.deepEqual(
    placed.map((p) => p.kind === "placed" && p.order.student_id),
    placed.map((_, n) => `S${n}`),
    "each request gets its own order",
  );
  assert.equal(intake.pending, 0);
});

Deno.test("OrderIntake fails only the group whose commit failed", async () => {
  let calls = 0;
  const store = {
    placeAll(orders: readonly NewOrder[]): Promise<Placement[]> {
      if (calls++ === 0) return Promise.reject(new Error("database went away"));
      return Promise.resolve(orders.map((o) => ({
        kind: "placed" as const,
        order: o.request as unknown as Order,
      })));
    },
  } as unknown as OrderStore;
  const intake = new OrderIntake(store);
  const results = await Promise.allSettled(
    Array.from({ length: MAX_GROUP + 1 }, (_, n) => intake.place(request(n))),
  );
  assert.equal(results.filter((r) => r.status === "rejected").length, MAX_GROUP);
  assert.equal(results.at(-1)!.status, "fulfilled", "the next group commits");
});
