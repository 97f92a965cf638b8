import assert from "node:assert/strict";
import { cycles } from "./check_imports.ts";

/** A graph from `"a -> b"` lines. */
function graphOf(...edges: string[]): Map<string, Set<string>> {
  const graph = new Map<string, Set<string>>();
  for (const edge of edges) {
    const [from, to] = edge.split(" -> ");
    if (!graph.has(from)) graph.set(from, new Set());
    if (to) graph.get(from)!.add(to);
  }
  return graph;
}

Deno.test("cycles() finds none in a layered graph", () => {
  const graph = graphOf("app -> store", "app -> log", "store -> log", "store -> sqlite", "log");
  assert.deepEqual(cycles(graph), []);
});

Deno.test("cycles() names every module of a cycle, once, and only those", async (t) => {
  await t.step("two modules importing each other", () => {
    assert.deepEqual(cycles(graphOf("http -> auth", "auth -> http", "auth -> log")), [
      ["auth", "http"],
    ]);
  });
  await t.step("a triplet, entered from outside it", () => {
    const graph = graphOf(
      "main -> store",
      "store -> store_sqlite",
      "store_sqlite -> store_postgres",
      "store_postgres -> store",
      "store_sqlite -> sqlite",
    );
    assert.deepEqual(cycles(graph), [["store", "store_postgres", "store_sqlite"]]);
  });
  await t.step("two separate cycles", () => {
    const graph = graphOf("a -> b", "b -> a", "c -> d", "d -> c", "a -> c");
    assert.deepEqual(cycles(graph).sort(), [["a", "b"], ["c", "d"]]);
  });
  await t.step("a module importing itself", () => {
    assert.deepEqual(cycles(graphOf("self -> self", "self -> other")), [["self"]]);
  });
});

Deno.test("cycles() walks a long chain without overflowing the call stack", () => {
  const length = 100_000;
  const edges = Array.from({ length }, (_, i) => `m${i} -> m${i + 1}`);
  assert.deepEqual(cycles(graphOf(...edges)), []);
  const found = cycles(graphOf(...edges, `m${length} -> m0`));
  assert.equal(found.length, 1);
  assert.equal(found[0].length, length + 1);
});
