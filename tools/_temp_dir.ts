/**
 * Temp folders for the tests of `deno task compile` (tools/compile_test.ts and
 * tests/compile_test.ts): one made and removed around a test, and what a folder holds.
 * @module
 */

/** The names in `dir`, sorted; none when it does not exist. */
export async function entries(dir: string): Promise<string[]> {
  try {
    return (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw err;
  }
}

/** Runs `test` with a temp folder that is removed afterwards. */
export async function inTempDir(test: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "campus-compile-" });
  try {
    await test(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
