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
 * The file is locked for this process alone (each service owns its database), which spares
 * every transaction the shared-memory locking. `dataDir` ":memory:" gives a throwaway
 * database for unit tests.
 */
export function openDatabase(dataDir: string, name: string): DatabaseSync {
  if (dataDir === ":memory:") return configure(new DatabaseSync(":memory:"));
  Deno.mkdirSync(dataDir, { recursive: true });
  return configure(new DatabaseSync(join(dataDir, `${name}.db`)));
}

function configure(db: DatabaseSync): DatabaseSync {
  db.exec(`
    PRAGMA locking_mode = EXCLUSIVE;
    PRAGMA journal_mode = WAL;
    PRAGMA synchronous = NORMAL;
    PRAGMA busy_timeout = 5000;
    PRAGMA foreign_keys = ON;
  `);
  return db;
}

/**
 * Runs `work` in one write transaction: committed when it returns, rolled back when it throws.
 * Inside another transaction it becomes a savepoint, so a consumer can commit a batch of
 * messages at once while one message's failure undoes only that message's work.
 * @example
 * ```ts
 * transaction(db, () => { insertOrder.run(...); outbox.add(event); });
 * ```
 */
export function transaction<T>(db: DatabaseSync, work: () => T): T {
  const nested = db.isTransaction;
  db.exec(nested ? "SAVEPOINT nested" : "BEGIN IMMEDIATE");
  try {
    const result = work();
    db.exec(nested ? "RELEASE nested" : "COMMIT");
    return result;
  } catch (err) {
    db.exec(nested ? "ROLLBACK TO nested; RELEASE nested" : "ROLLBACK");
    throw err;
  }
}

export type { DatabaseSync };
