/**
 * Menu item names as people type them: matched trimmed and without regard to case, and, for a
 * name that is on no menu, the items it is closest to by edit distance.
 * @module
 */

/**
 * The key two spellings of the same item share: trimmed, Unicode-normalized, lower case.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { menuKey } from "./menu.ts";
 *
 * assert.equal(menuKey(" coffee "), menuKey("Coffee"));
 * ```
 */
export function menuKey(name: string): string {
  return name.trim().normalize("NFC").toLowerCase();
}

/**
 * Up to `count` items of `menu` that `name` is a likely misspelling of, closest first: those
 * within an edit distance of about a third of the longer name (at least 2), ties by menu order.
 * Empty when nothing is close.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { closestItems } from "./menu.ts";
 *
 * const menu = ["Pizza", "Coffee", "Toffee"];
 * assert.deepEqual(closestItems("cofee", menu), ["Coffee", "Toffee"]);
 * assert.deepEqual(closestItems("Lasagne", menu), []);
 * ```
 */
export function closestItems(name: string, menu: readonly string[], count = 3): string[] {
  const wanted = menuKey(name);
  return menu
    .map((item, index) => {
      const key = menuKey(item);
      const limit = Math.max(2, Math.ceil(Math.max(key.length, wanted.length) / 3));
      return { item, index, distance: editDistance(wanted, key, limit), limit };
    })
    .filter((c) => c.distance <= c.limit)
    .sort((a, b) => a.distance - b.distance || a.index - b.index)
    .slice(0, count)
    .map((c) => c.item);
}

/**
 * Levenshtein distance between `a` and `b`, counted in code points; stops early and answers
 * `limit + 1` once the distance is known to exceed `limit`.
 */
function editDistance(a: string, b: string, limit: number): number {
  const x = Array.from(a);
  const y = Array.from(b);
  if (Math.abs(x.length - y.length) > limit) return limit + 1;
  let previous = Array.from({ length: y.length + 1 }, (_, j) => j);
  for (let i = 1; i <= x.length; i++) {
    const current = [i];
    let best = i;
    for (let j = 1; j <= y.length; j++) {
      const cost = x[i - 1] === y[j - 1] ? 0 : 1;
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost);
      best = Math.min(best, current[j]);
    }
    if (best > limit) return limit + 1;
    previous = current;
  }
  return previous[y.length];
}
