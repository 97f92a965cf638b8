import assert from "node:assert/strict";
import { closestItems, menuKey } from "./menu.ts";

const MENU = ["Pizza", "Burger", "Sushi", "Salad", "Taco", "Sandwich", "Pasta", "Coffee"];

Deno.test("menuKey() matches spellings that differ in case and surrounding spaces", () => {
  assert.equal(menuKey(" coffee "), menuKey("Coffee"));
  assert.equal(menuKey("CRÈME BRÛLÉE"), menuKey("Crème brûlée"));
  // The same letter composed or decomposed is the same item.
  assert.equal(menuKey("Cafe\u0301"), menuKey("Caf\u00e9"));
  assert.notEqual(menuKey("Coffee"), menuKey("Toffee"));
});

Deno.test("closestItems() names a few likely misspellings, closest first", () => {
  assert.deepEqual(closestItems("Cofee", MENU), ["Coffee"]);
  assert.deepEqual(closestItems("pasa", MENU), ["Pasta"]);
  assert.deepEqual(closestItems("pi", ["Pie", "Tie", "Lie", "Pig"]), ["Pie", "Pig", "Tie"]);
  assert.deepEqual(closestItems("sandwhich", MENU), ["Sandwich"]);
  assert.deepEqual(closestItems("Caviar", MENU), [], "nothing close, nothing named");
});

Deno.test("closestItems() keeps to `count` on a menu of 300 items", () => {
  const menu = Array.from({ length: 300 }, (_, i) => `Dish ${i}`);
  const close = closestItems("dish 12x", menu);
  assert.equal(close.length, 3);
  assert.equal(close[0], "Dish 12");
});
