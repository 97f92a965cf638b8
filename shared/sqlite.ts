/**
 * Opens a service's SQLite database (`node:sqlite`) with the settings every store relies on,
 * and runs work in a transaction.
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { bindToActiveContext } from "./tracing.ts";

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
 * @example
 * ```ts
 * transaction(db, () => { insertOrder.run(...); outbox.add(event); });
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
 * that announces it. The hook runs in the trace context it was added in, so a line it logs names
 * the trace of the message that caused it, even when a batch commits many messages at once.
 */
export function afterCommit(db: DatabaseSync, hook: () => void): void {
  const hooks = commitHooks.get(db);
  if (hooks?.length) hooks[hooks.length - 1].push(bindToActiveContext(hook));
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
  pageSize?: number;
}

/**
 * Reads a table's rows in insertion (rowid) order, a page at a time, each page a fresh query
 * that starts after the last rowid seen: a listing of any size holds one page in memory and no
 * statement stays open between pages.
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
