/**
 * A service's SQLite database (`node:sqlite`), opened with the settings every store relies on,
 * behind the engine-neutral {@linkcode Database}.
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import {
  type Database,
  type TransactionFrame,
  type TransactionOptions,
  TransactionScope,
} from "./database.ts";
import { WalFlush } from "./_wal_flush.ts";

/** What a transaction's work gave, and the frame of its commit hooks. */
type Level<T> = { result: T; frame: TransactionFrame<number> };

/**
 * Opens `<dataDir>/<name>.db` (creating the folder), in WAL mode with `synchronous=FULL`: a
 * commit is on disk before it returns, so it survives a power loss, not only a crash of the
 * process. {@linkcode SqliteDatabase} keeps that guarantee with the flush moved off the event
 * loop. The file is locked for this process alone (each service owns its database), which
 * spares every transaction the shared-memory locking. `dataDir` ":memory:" gives a throwaway
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

/**
 * A service's SQLite database behind the engine-neutral {@linkcode Database}. One connection
 * serves the whole process, so a transaction that spans `await`s holds it alone: store calls
 * from outside that transaction wait until it ended, and never see or join its uncommitted
 * work. Statements themselves stay synchronous ({@linkcode SqliteDatabase.write},
 * {@linkcode SqliteDatabase.read}), which keeps the embedded engine as fast as it was.
 */
export class SqliteDatabase implements Database {
  /** Always `sqlite`. */
  readonly engine: "sqlite" = "sqlite";
  /** Savepoint depth of each open level; 0 for the transaction itself. */
  #scope = new TransactionScope<number>();
  #locked = false;
  #waiting: (() => void)[] = [];
  #wal: WalFlush | undefined;

  /**
   * A database on the open connection `db`.
   * @param db the connection, opened with {@linkcode openDatabase}
   * @param location the file, for logs
   */
  constructor(readonly db: DatabaseSync, readonly location: string) {
    if (location === ":memory:") return;
    // Commits go to the log without SQLite's own flush, which would block the event loop; each
    // transaction awaits the group flush of the log instead, so a resolved commit is on disk
    // exactly as with synchronous=FULL.
    db.exec("PRAGMA synchronous = NORMAL");
    this.#wal = new WalFlush(`${location}-wal`);
  }

  /** Opens `<dataDir>/<name>.db` as {@linkcode openDatabase} does. */
  static open(dataDir: string, name: string): SqliteDatabase {
    const location = dataDir === ":memory:" ? ":memory:" : join(dataDir, `${name}.db`);
    return new SqliteDatabase(openDatabase(dataDir, name), location);
  }

  async transaction<T>(work: () => Promise<T>, options?: TransactionOptions): Promise<T> {
    const outer = this.#scope.current();
    if (outer?.flat) return await this.#scope.nested(outer, work);
    if (outer) {
      const name = this.#savepoint(outer);
      try {
        const { result, frame } = await this.#scope.run(outer.handle + 1, work);
        this.#release(name, frame, outer);
        return result;
      } catch (err) {
        this.#rollBackTo(name);
        throw err;
      }
    }
    const flat = options?.savepoints === false;
    return await this.#outermost(() => this.#scope.run(0, work, flat));
  }

  /**
   * Runs synchronous `work` atomically: as a savepoint of the current transaction, or as a
   * transaction of its own once no other is open. Its commit hooks follow the same rule.
   * `durable: false` is for bookkeeping that may be lost with a power loss (an outbox row
   * marked sent is only sent again): its own commit then resolves without waiting for a flush.
   */
  async write<T>(work: () => T, { durable = true }: { durable?: boolean } = {}): Promise<T> {
    const outer = this.#scope.current();
    if (outer?.flat) return await this.#scope.nested(outer, work);
    if (outer) {
      const name = this.#savepoint(outer);
      try {
        const { result, frame } = this.#scope.runSync(outer.handle + 1, work);
        this.#release(name, frame, outer);
        return result;
      } catch (err) {
        this.#rollBackTo(name);
        throw err;
      }
    }
    return await this.#outermost(() => this.#scope.runSync(0, work), durable);
  }

  // The savepoint branch of transaction() and write() differs only in awaiting the work: one
  // generic branch would have to await write()'s synchronous work too, a microtask more on
  // every nested write. The steps it takes are shared here instead.

  /** Opens the savepoint of the level inside `outer`; returns its name. */
  #savepoint(outer: TransactionFrame<number>): string {
    const name = `level${outer.handle + 1}`;
    this.db.exec(`SAVEPOINT ${name}`);
    return name;
  }

  /** Keeps a savepoint's work; its commit hooks wait for the outer level's commit. */
  #release(
    name: string,
    frame: TransactionFrame<number>,
    outer: TransactionFrame<number>,
  ): void {
    this.db.exec(`RELEASE ${name}`);
    this.#scope.committed(frame, outer);
  }

  /** Undoes a savepoint's work and ends it. */
  #rollBackTo(name: string): void {
    this.db.exec(`ROLLBACK TO ${name}; RELEASE ${name}`);
  }

  /**
   * Resolves once every commit made so far is on disk. A transaction already waits for this
   * before it resolves; a reader that hands committed rows to the outside world (the outbox
   * relay) calls it between reading and publishing.
   */
  durable(): Promise<void> {
    return this.#wal?.flush() ?? Promise.resolve();
  }

  /**
   * Runs synchronous `work` that only reads: inside the current transaction, or once no
   * transaction is open, so it never sees another's uncommitted rows.
   */
  async read<T>(work: () => T): Promise<T> {
    if (this.#scope.current() || !this.#locked) return work();
    await this.#lock();
    try {
      return work();
    } finally {
      this.#unlock();
    }
  }

  afterCommit(hook: () => void): void {
    this.#scope.afterCommit(hook);
  }

  /**
   * {@linkcode Database.migrate}; a step may also be a function of the connection, for a change
   * SQL alone cannot make conditional (a column that files made by earlier versions may have).
   */
  migrate(
    component: string,
    steps: readonly (string | ((db: DatabaseSync) => void))[],
  ): Promise<void> {
    return this.write(() => {
      this.db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
        component TEXT NOT NULL,
        version INTEGER NOT NULL,
        applied_at TEXT NOT NULL,
        PRIMARY KEY (component, version)
      )`);
      const row = this.db.prepare(
        `SELECT max(version) AS version FROM schema_migrations WHERE component = ?`,
      ).get(component);
      const record = this.db.prepare(`INSERT INTO schema_migrations VALUES (?, ?, ?)`);
      for (let version = Number(row?.version ?? 0) + 1; version <= steps.length; version++) {
        const step = steps[version - 1];
        if (typeof step === "string") this.db.exec(step);
        else step(this.db);
        record.run(component, version, new Date().toISOString());
      }
    });
  }

  /** Waits for the flush under way, then closes the file. */
  async close(): Promise<void> {
    await this.#wal?.close();
    this.db.close();
  }

  /**
   * The outermost transaction: holds the connection while `level` runs between `BEGIN` and
   * `COMMIT`, lets it go, and resolves once the commit is on disk. Only then do the commit hooks
   * run (and the caller answer or acknowledge): what they announce survives a power loss. A
   * flush that fails rejects although the commit stands; callers treat it as failed work, which
   * redelivery or an `Idempotency-Key` retry finds already done.
   */
  async #outermost<T>(
    level: () => Level<T> | Promise<Level<T>>,
    durable = true,
  ): Promise<T> {
    if (this.#locked) await this.#lock();
    else this.#locked = true;
    let done: Level<T>;
    let commit: number | undefined;
    try {
      this.db.exec("BEGIN IMMEDIATE");
      try {
        const running = level();
        done = running instanceof Promise ? await running : running;
        this.#scope.mayCommit(done.frame);
        this.db.exec("COMMIT");
        if (durable) commit = this.#wal?.committed();
      } catch (err) {
        if (this.db.isTransaction) this.db.exec("ROLLBACK");
        throw err;
      }
    } finally {
      this.#unlock();
    }
    if (commit !== undefined) await this.#wal?.flush(commit);
    this.#scope.committed(done.frame, undefined);
    return done.result;
  }

  /** Waits until no transaction holds the connection, then holds it. */
  async #lock(): Promise<void> {
    if (!this.#locked) {
      this.#locked = true;
      return;
    }
    await new Promise<void>((resolve) => this.#waiting.push(resolve));
  }

  /** Hands the connection to the next waiter (it stays held), or frees it. */
  #unlock(): void {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#locked = false;
  }
}

export type { DatabaseSync };
