/**
 * A service's PostgreSQL database (`DATABASE_URL`) behind the engine-neutral
 * {@linkcode Database}, shared by every replica of the service, and the only module that knows
 * the driver.
 * @module
 */
import postgres from "postgres";
import {
  type Database,
  type DeferredWrite,
  LockTimeout,
  TransactionConflict,
  type TransactionFrame,
  type TransactionOptions,
  TransactionScope,
} from "./database.ts";
import type { DatabaseWaits } from "./database_waits.ts";
import { redactUrl } from "../runtime/redact.ts";
import { postgresTarget } from "./postgres_target.ts";

/** The driver's query function: the pool, or one transaction's connection. */
export type Sql = postgres.ISql;
/** A row as the driver returns it. */
export type Row = postgres.Row;

/** The driver's pool of connections (npm:postgres). */
export type Pool = postgres.Sql;

/** Options of {@linkcode PostgresDatabase.connect}. */
export interface PostgresOptions {
  /** Shown by the server in `pg_stat_activity.application_name`. */
  name: string;
  /** Connections in the pool. */
  max?: number;
  /** Bounds on waiting, set on every connection of the pool; the server's own when absent. */
  timeouts?: DatabaseTimeouts;
  /** Where the transactions under way are noted, for `/ready`. */
  waits?: DatabaseWaits;
}

/**
 * How long the server lets one of the pool's sessions wait, in ms (0: no limit). Without them
 * a row held by an operator's `psql` or a paused replica blocks every transaction that needs
 * it, and everything queued behind those, for as long as it is held.
 */
export interface DatabaseTimeouts {
  /** `lock_timeout`: longest wait for a lock; then {@linkcode LockTimeout}. */
  lockMs: number;
  /** `statement_timeout`: longest run of one statement; then the statement is cancelled. */
  statementMs: number;
  /**
   * `idle_in_transaction_session_timeout`: longest pause inside a transaction; then the server
   * ends the session, and its locks with it (a replica stopped mid-transaction).
   */
  idleInTransactionMs: number;
}

type Frame = TransactionFrame<postgres.TransactionSql>;
/** What a level of transaction resolves to; the driver's typing of it is too eager to help. */
type Level<T> = { result: T; frame: Frame };

/** SQLSTATEs of a transaction given up for colliding with another: deadlock, serialization. */
const CONFLICTS = new Set(["40P01", "40001"]);
/** SQLSTATE `lock_not_available`: `lock_timeout` passed (or `NOWAIT` found the lock taken). */
const LOCK_NOT_AVAILABLE = "55P03";
/** Times the outermost transaction is run when it keeps colliding. */
const CONFLICT_ATTEMPTS = 5;
/** Key of the advisory lock that lets one process at a time migrate a database. */
const MIGRATION_LOCK = 0x63616d70; // "camp"

/**
 * A pool of connections to one database. A transaction holds one connection for its
 * duration; store calls made inside it use that connection through
 * {@linkcode PostgresDatabase.sql}.
 */
export class PostgresDatabase implements Database {
  /** Always `postgres`. */
  readonly engine: "postgres" = "postgres";
  #scope = new TransactionScope<postgres.TransactionSql>();

  /**
   * A database on `pool`; {@linkcode PostgresDatabase.connect} makes one from a URL.
   * @param pool the driver's pool
   * @param location the URL without its password, for logs
   */
  constructor(
    readonly pool: Pool,
    readonly location: string,
    private readonly waits?: DatabaseWaits,
    /** The bounds every session of the pool has; the server's own when absent. */
    readonly timeouts?: DatabaseTimeouts,
  ) {}

  /** A pool for `url`; connections open on first use. */
  static connect(
    url: string,
    { name, max = 8, timeouts, waits }: PostgresOptions,
  ): PostgresDatabase {
    const target = postgresTarget(url);
    const pool = postgres(target.url, {
      ...(target.socket && { path: target.socket }),
      max,
      connect_timeout: 10,
      // Idle connections go, so replicas that calm down give the server its slots back.
      idle_timeout: 60,
      // `CREATE ... IF NOT EXISTS` says so in a notice, which would otherwise go to the console.
      onnotice: () => {},
      // Settings in the start-up packet cost no round trip: every session has them from the
      // start, including one the pool opens again after a failure.
      connection: {
        application_name: name,
        ...(timeouts && {
          lock_timeout: timeouts.lockMs,
          statement_timeout: timeouts.statementMs,
          idle_in_transaction_session_timeout: timeouts.idleInTransactionMs,
        }),
      },
      transform: { undefined: null },
      // No fetching of the server's types: arrays go as their text (arrayText), and the rest
      // are built in. Fetching runs a catalog query as the first statement of every new
      // connection, and the driver (3.4.9) drops that query's promise: when it fails (a
      // database refusing connections) the rejection is unhandled (porsager/postgres#1192).
      fetch_types: false,
    });
    return new PostgresDatabase(pool, redactUrl(url), waits, timeouts);
  }

  /** The connection of the current transaction, or the pool outside one. */
  get sql(): Sql {
    return this.#scope.current()?.handle ?? this.pool;
  }

  /** True inside a {@linkcode PostgresDatabase.transaction}. */
  get inTransaction(): boolean {
    return this.#scope.current() !== undefined;
  }

  /**
   * True inside a transaction without savepoints (`savepoints: false`): whatever fails in it
   * fails all of it, so work may keep what it did in memory until the commit, with nothing to
   * undo should one part of it fail.
   */
  get allOrNothing(): boolean {
    return this.#scope.current()?.flat ?? false;
  }

  async transaction<T>(work: () => Promise<T>, options?: TransactionOptions): Promise<T> {
    const outer = this.#scope.current();
    if (outer?.flat) return await this.#scope.nested(outer, work);
    if (outer) {
      try {
        const { result, frame } = await outer.handle.savepoint((savepoint) =>
          this.#scope.run(savepoint, work)
        ) as Level<T>;
        this.#scope.committed(frame, outer);
        return result;
      } catch (err) {
        // Rolling back to the savepoint would not free the locks taken before it: the whole
        // transaction has to go and run again.
        throw isConflict(err) ? asConflict(err) : asLockTimeout(err);
      }
    }
    const ended = this.waits?.begin();
    try {
      for (let attempt = 1;; attempt++) {
        try {
          const level = this.pool.begin(async (tx) => {
            const done = await this.#scope.run(tx, work, options?.savepoints === false);
            this.#scope.mayCommit(done.frame);
            await this.#scope.writeDeferred(done.frame);
            return done;
          });
          const { result, frame } = await level as Level<T>;
          this.#scope.committed(frame, undefined);
          return result;
        } catch (err) {
          if (!isConflict(err)) throw asLockTimeout(err);
          if (attempt >= CONFLICT_ATTEMPTS) throw asConflict(err);
          // A short random pause keeps the two colliding transactions from meeting again.
          await new Promise((resolve) => setTimeout(resolve, Math.random() * 20 * attempt));
        }
      }
    } finally {
      ended?.();
    }
  }

  afterCommit(hook: () => void): void {
    this.#scope.afterCommit(hook);
  }

  /**
   * Puts `rows` off to the end of the outermost transaction open in this context, where
   * `writer` writes them with the others put off in it, in one statement if it likes, before
   * the commit; false outside a transaction (the caller writes them now). Rows put off in a
   * savepoint that rolls back are dropped with it.
   */
  defer<T>(writer: DeferredWrite<Sql, T>, ...rows: T[]): boolean {
    return this.#scope.defer(writer, ...rows);
  }

  async migrate(component: string, steps: readonly string[]): Promise<void> {
    await this.pool.begin(async (tx) => {
      // A migration may wait for another replica's and rewrite a large table: the session's
      // bounds, meant for the work of requests and messages, do not apply to it.
      await tx`SET LOCAL lock_timeout = 0`;
      await tx`SET LOCAL statement_timeout = 0`;
      // Replicas starting together queue here; the first applies the steps, the others find
      // them recorded. The lock ends with the transaction, even when the process dies.
      await tx`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`;
      await tx`CREATE TABLE IF NOT EXISTS schema_migrations (
        component text NOT NULL,
        version integer NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (component, version)
      )`;
      const [{ version }] = await tx`SELECT coalesce(max(version), 0)::int AS version
        FROM schema_migrations WHERE component = ${component}`;
      for (let next = Number(version) + 1; next <= steps.length; next++) {
        await tx.unsafe(steps[next - 1]);
        await tx`INSERT INTO schema_migrations (component, version) VALUES (${component}, ${next})`;
      }
    });
  }

  /** Ends the pool's connections, waiting briefly for queries under way. */
  async close(): Promise<void> {
    await this.pool.end({ timeout: 5 });
  }
}

/**
 * What a store keeps in memory for the rest of each transaction without savepoints (a
 * consumer's batch, see {@linkcode PostgresDatabase.allOrNothing}): one value per open
 * transaction, made when first asked for, gone with the transaction.
 */
export class BatchMemory<T> {
  #kept = new WeakMap<Sql, T>();

  /** Values of transactions on `db`, each made by `make`. */
  constructor(private readonly db: PostgresDatabase, private readonly make: () => T) {}

  /** The current transaction's value; undefined outside a transaction without savepoints. */
  current(): T | undefined {
    if (!this.db.allOrNothing) return undefined;
    const sql = this.db.sql;
    let value = this.#kept.get(sql);
    if (value === undefined) {
      value = this.make();
      this.#kept.set(sql, value);
    }
    return value;
  }

  /** Forgets the current transaction's value, if it has one, and returns it. */
  forget(): T | undefined {
    const sql = this.db.sql;
    const value = this.#kept.get(sql);
    this.#kept.delete(sql);
    return value;
  }
}

/** What {@linkcode pagesOf} reads. */
export interface PagedQuery {
  /** Table name (from code, never from a request). */
  table: string;
  /** Columns to read (from code). */
  columns: readonly string[];
  /** The increasing key that gives the order of the listing, e.g. `seq`. */
  key: string;
  /** Equality filters by column; undefined ones are left out. */
  where?: Record<string, string | number | undefined>;
  /** At most this many rows in all. */
  limit?: number;
  /** Rows read per query. */
  pageSize?: number;
}

/**
 * Reads a table's rows in `key` order, a page at a time, each page a fresh query that starts
 * after the last key seen: a listing of any size holds one page in memory and keeps no
 * connection between pages.
 */
export async function* pagesOf(
  db: PostgresDatabase,
  { table, columns, key, where = {}, limit = Infinity, pageSize = 500 }: PagedQuery,
): AsyncGenerator<Row[]> {
  const filters = Object.entries(where).filter(([, value]) => value !== undefined);
  let after: string | number = -1;
  let left = limit;
  while (left > 0) {
    const sql = db.sql;
    const conditions = filters.reduce(
      (before, [column, value]) => sql`${before} AND ${sql(column)} = ${value!}`,
      sql``,
    );
    const rows: Row[] = await sql`SELECT ${sql(key)} AS page_key, ${sql(columns as string[])}
      FROM ${sql(table)} WHERE ${sql(key)} > ${after} ${conditions}
      ORDER BY ${sql(key)} LIMIT ${Math.min(pageSize, left)}`;
    if (rows.length === 0) return;
    yield rows;
    after = rows[rows.length - 1].page_key;
    left -= rows.length;
    if (rows.length < pageSize) return;
  }
}

/**
 * `values` as the text of a PostgreSQL array, for a parameter the statement casts
 * (`${arrayText(ids)}::text[]`, or `::integer[]`, `::timestamptz[]`). The driver sends arrays
 * only once it has fetched the server's types, which it does not here (see `fetch_types`). A
 * statement taking an array has one text for any number of values, where an `IN` list or a
 * `VALUES` row per value made a statement of each length, prepared and planned afresh on
 * every connection.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { arrayText } from "./postgres.ts";
 *
 * assert.equal(arrayText(["a", 'say "hi"', "back\\slash", null, 3]), String.raw`{"a","say \"hi\"","back\\slash",NULL,"3"}`);
 * ```
 */
export function arrayText(values: readonly (string | number | null)[]): string {
  const quoted = values.map((value) =>
    value === null ? "NULL" : `"${String(value).replace(/["\\]/g, "\\$&")}"`
  );
  return `{${quoted.join(",")}}`;
}

/** True for an error the server raised because two transactions collided. */
export function isConflict(err: unknown): boolean {
  if (err instanceof TransactionConflict) return true;
  const code = (err as { code?: unknown })?.code;
  return typeof code === "string" && CONFLICTS.has(code);
}

/** The driver's error for a lock wait that timed out as a {@linkcode LockTimeout}; others as is. */
function asLockTimeout(err: unknown): unknown {
  if (err instanceof LockTimeout) return err;
  if ((err as { code?: unknown })?.code !== LOCK_NOT_AVAILABLE) return err;
  return new LockTimeout(`Gave up waiting for a lock another transaction holds: ${String(err)}`, {
    cause: err,
  });
}

function asConflict(err: unknown): TransactionConflict {
  if (err instanceof TransactionConflict) return err;
  return new TransactionConflict(`Transaction collided with another: ${String(err)}`, {
    cause: err,
  });
}
