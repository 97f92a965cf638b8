/**
 * Opens a service's SQLite database (`node:sqlite`) with the settings every store relies on,
 * and runs work in a transaction.
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";

/**
 * Opens `<dataDir>/<name>.db` (creating the folder), in WAL mode with `synchronous=FULL`: a
 * commit is on disk before it returns, so an order answered 201 and a message acknowledged after
 * its commit survive a power loss, not only a crash of the process. Consumers and `POST /order`
 * commit in batches, which spreads that flush over many messages. The file is locked for this process alone (each service owns its database), which spares
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
    PRAGMA synchronous = FULL;
    PRAGMA busy_timeout = 5000;
    PRAGMA foreign_keys = ON;
  `);
  return db;
}

/**
 * Runs `work` in one write transaction: committed when it returns, rolled back when it throws.
 * Inside another transaction it becomes a savepoint, so a consumer can commit a batch of
 * messages at once while one message's failure undoes only that message's work.
 * @example An order row and its event commit together, or neither does
 * ```ts
 * import assert from "node:assert/strict";
 * import { openDatabase, transaction } from "./sqlite.ts";
 *
 * const db = openDatabase(":memory:", "example");
 * db.exec("CREATE TABLE orders (id TEXT); CREATE TABLE outbox (event TEXT)");
 * assert.throws(() =>
 *   transaction(db, () => {
 *     db.prepare("INSERT INTO orders VALUES (?)").run("o1");
 *     throw new Error("the event does not pass its schema");
 *   })
 * );
 * transaction(db, () => {
 *   db.prepare("INSERT INTO orders VALUES (?)").run("o2");
 *   db.prepare("INSERT INTO outbox VALUES (?)").run("OrderPlaced o2");
 * });
 * assert.deepEqual(db.prepare("SELECT id FROM orders").all().map((row) => row.id), ["o2"]);
 * ```
 */
export function transaction<T>(db: DatabaseSync, work: () => T): T {
  const nested = db.isTransaction;
  const hooks = commitHooks.get(db) ?? [];
  commitHooks.set(db, hooks);
  db.exec(nested ? "SAVEPOINT nested" : "BEGIN IMMEDIATE");
  hooks.push([]);
  try {
    const result = work();
    db.exec(nested ? "RELEASE nested" : "COMMIT");
    const committed = hooks.pop()!;
    // A savepoint's hooks wait for the transaction around it; the outermost commit runs them.
    if (hooks.length > 0) hooks[hooks.length - 1].push(...committed);
    else runHooks(committed);
    return result;
  } catch (err) {
    hooks.pop();
    db.exec(nested ? "ROLLBACK TO nested; RELEASE nested" : "ROLLBACK");
    throw err;
  }
}

/** Per database, the hooks of each open {@linkcode transaction}, outermost first. */
const commitHooks = new WeakMap<DatabaseSync, (() => void)[][]>();

/**
 * Runs `hook` once the work done so far is committed: at the end of the outermost open
 * {@linkcode transaction}, never when it (or the savepoint `hook` was added in) rolls back; at
 * once outside a transaction. For effects that must not outrun the data, such as the log line
 * that announces it.
 */
export function afterCommit(db: DatabaseSync, hook: () => void): void {
  const hooks = commitHooks.get(db);
  if (hooks?.length) hooks[hooks.length - 1].push(hook);
  else runHooks([hook]);
}

function runHooks(hooks: (() => void)[]): void {
  for (const hook of hooks) {
    try {
      hook();
    } catch {
      // The work is committed and stays so: a failing hook must not make it look rolled back.
    }
  }
}

/** What {@linkcode pagesOf} reads. */
export interface PagedQuery {
  /** Table name (from code, never from a request). */
  table: string;
  /** Column list, e.g. `"*"`. */
  columns: string;
  /** Equality filters by column; undefined ones are left out. */
  where?: Record<string, string | number | undefined>;
  /** At most this many rows in all. */
  limit?: number;
  /** Rows per query; 500 by default. */
  pageSize?: number;
}

/**
 * Reads a table's rows in insertion (rowid) order, a page at a time, each page a fresh query
 * that starts after the last rowid seen: a listing of any size holds one page in memory and no
 * statement stays open between pages.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openDatabase, pagesOf } from "./sqlite.ts";
 *
 * const db = openDatabase(":memory:", "example");
 * db.exec("CREATE TABLE orders (id INTEGER, status TEXT)");
 * for (let id = 1; id <= 5; id++) {
 *   db.prepare("INSERT INTO orders VALUES (?, ?)").run(id, id % 2 ? "RESERVED" : "FAILED");
 * }
 * const query = { table: "orders", columns: "id", where: { status: "RESERVED" }, pageSize: 2 };
 * const pages = [...pagesOf(db, query)].map((page) => page.map((row) => row.id));
 * assert.deepEqual(pages, [[1, 3], [5]]);
 * ```
 */
export function* pagesOf(
  db: DatabaseSync,
  { table, columns, where = {}, limit = Infinity, pageSize = 500 }: PagedQuery,
): Generator<Record<string, unknown>[]> {
  const filters = Object.entries(where).filter(([, value]) => value !== undefined);
  const statement = db.prepare(
    `SELECT rowid AS "rowid", ${columns} FROM ${table} WHERE rowid > ?
     ${filters.map(([column]) => `AND ${column} = ?`).join(" ")} ORDER BY rowid LIMIT ?`,
  );
  const values = filters.map(([, value]) => value as string | number);
  let after = 0;
  let left = limit;
  while (left > 0) {
    const rows = statement.all(after, ...values, Math.min(pageSize, left));
    if (rows.length === 0) return;
    yield rows;
    after = Number(rows[rows.length - 1].rowid);
    left -= rows.length;
    if (rows.length < pageSize) return;
  }
}

export type { DatabaseSync };
