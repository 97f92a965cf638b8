/**
 * Opens a service's SQLite database (`node:sqlite`) with the settings every store relies on,
 * and runs work in a transaction.
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";

/**
 * Opens `<dataDir>/<name>.db` (creating the folder), in WAL mode with `synchronous=NORMAL`:
 * a commit survives a crash of the process; only a power loss can lose the last commits.
 * `dataDir` ":memory:" gives a throwaway database for unit tests.
 */
export function openDatabase(dataDir: string, name: string): DatabaseSync {
  if (dataDir === ":memory:") return configure(new DatabaseSync(":memory:"));
  Deno.mkdirSync(dataDir, { recursive: true });
  return configure(new DatabaseSync(join(dataDir, `${name}.db`)));
}

function configure(db: DatabaseSync): DatabaseSync {
  db.exec(`
    PRAGMA journal_mode = WAL;
    PRAGMA synchronous = NORMAL;
    PRAGMA busy_timeout = 5000;
    PRAGMA foreign_keys = ON;
  `);
  return db;
}

/**
 * Runs `work` in one write transaction: committed when it returns, rolled back when it throws.
 * @example
 * ```ts
 * transaction(db, () => { insertOrder.run(...); outbox.add(event); });
 * ```
 */
export function transaction<T>(db: DatabaseSync, work: () => T): T {
  db.exec("BEGIN IMMEDIATE");
  try {
    const result = work();
    db.exec("COMMIT");
    return result;
  } catch (err) {
    db.exec("ROLLBACK");
    throw err;
  }
}

export type { DatabaseSync };
