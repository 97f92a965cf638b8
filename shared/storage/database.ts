/**
 * A service's database as its stores see it, whichever the engine: SQLite in `DATA_DIR` (the
 * embedded default) or PostgreSQL at `DATABASE_URL` (shared by replicas). Transactions are
 * ambient: a store call made inside {@linkcode Database.transaction} joins it, so a handler
 * calls its stores plainly and the consumer decides what commits together.
 * @module
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { bindToActiveContext } from "../runtime/tracing.ts";

/** The engines a service can keep its state in. */
export type Engine = "sqlite" | "postgres";

/** What every engine offers the stores and the service runtime. */
export interface Database {
  /** Which engine this is. */
  readonly engine: Engine;
  /** Where the data lives, fit for logs: a file path, or the URL without its password. */
  readonly location: string;
  /**
   * Runs `work` in one transaction: committed when it resolves, rolled back when it throws.
   * Store calls made by `work` take part in it. Inside another transaction it becomes a
   * savepoint, so one message of a batch can fail without undoing the others.
   */
  transaction<T>(work: () => Promise<T>, options?: TransactionOptions): Promise<T>;
  /**
   * Runs `hook` once the work done so far is committed: at the end of the outermost open
   * transaction, never when it (or the savepoint `hook` was added in) rolls back; at once
   * outside a transaction. For effects that must not outrun the data, such as the log line that
   * announces it or waking the outbox relay. The hook runs in the trace context it was added
   * in, so a line it logs names the trace of the message that caused it, even when a batch
   * commits many messages at once.
   */
  afterCommit(hook: () => void): void;
  /**
   * Brings the schema of `component` (e.g. `"orders"`) up to date: applies the steps beyond
   * the last one recorded in `schema_migrations`, in order, each once. Steps are append-only;
   * step N is version N. Safe when several replicas start at once.
   */
  migrate(component: string, steps: readonly string[]): Promise<void>;
  /** Closes the database: the file, or the pool's connections. */
  close(): Promise<void>;
}

/** How {@linkcode Database.transaction} runs its work. */
export interface TransactionOptions {
  /**
   * `false` for all or nothing: the transactions and writes nested in it take no savepoint of
   * their own (on PostgreSQL each is a round trip, on SQLite two statements), and should one
   * of them throw, even if the work catches it, the whole transaction is rolled back and
   * rejects: with {@linkcode NestedWorkFailed}, or on PostgreSQL with the error of the
   * statement that failed. For a batch that is expected to go through and
   * can be run again the careful way when it does not. Only an outermost transaction can
   * choose; one nested in it follows it. Default `true`.
   */
  savepoints?: boolean;
}

/**
 * Thrown by a transaction without savepoints when work nested in it failed: nothing of it was
 * committed. The failure is the `cause`.
 */
export class NestedWorkFailed extends Error {
  /** A transaction undone for `cause`, which a nested level threw. */
  constructor(cause: unknown) {
    super(`Work nested in a transaction without savepoints failed: ${String(cause)}`, { cause });
    this.name = "NestedWorkFailed";
  }
}

/**
 * Thrown when the engine gave up a transaction because it collided with another one (a
 * deadlock, a serialization failure). Nothing of it was committed, and running it again is
 * expected to work: the outermost {@linkcode Database.transaction} does so itself, so code that
 * catches errors inside a transaction must let this one through.
 */
export class TransactionConflict extends Error {
  /** A collision described by `message`; the driver's error goes in `cause`. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "TransactionConflict";
  }
}

/**
 * Thrown when the engine gave up waiting for a lock that another transaction holds (PostgreSQL's
 * `lock_timeout`). Nothing of the transaction or savepoint that waited was done; running it
 * again once the other transaction ends is expected to work, so it is no reason to fail or
 * dead-letter anything: the work is set aside and tried again later.
 */
export class LockTimeout extends Error {
  /** A wait described by `message`; the driver's error goes in `cause`. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "LockTimeout";
  }
}

/** One level of open transaction: the hooks waiting for its commit. */
export interface TransactionFrame<C> {
  /** Engine handle of this level (a connection, a savepoint). */
  readonly handle: C;
  /** Hooks to run once this level's work is committed. */
  readonly hooks: (() => void)[];
  /** Set once the level committed or rolled back: work that escaped it must not use it. */
  done: boolean;
  /** A transaction without savepoints: levels nested in it run as part of it. */
  readonly flat: boolean;
  /** In a flat transaction, what a nested level threw first: the transaction must not commit. */
  failure?: { error: unknown };
  /** Rows put off to the end of the outermost level, by the writer that writes them. */
  readonly deferred: Map<DeferredWrite<C, unknown>, unknown[]>;
}

/**
 * Writes rows put off with {@linkcode TransactionScope.defer}: all of a transaction's at once,
 * on its connection, just before it commits.
 */
export interface DeferredWrite<C, T> {
  /**
   * Writes `rows`, in the order they were put off, with the transaction's `handle`; what the
   * writer learnt of each row (a key already taken, say) it hands to hooks given to
   * `afterCommit`, which run once the transaction committed.
   */
  write(rows: T[], handle: C, afterCommit: (hook: () => void) => void): Promise<void>;
}

/**
 * The bookkeeping both engines share: which transaction the running code is in (carried
 * across `await`s), and the commit hooks of each level.
 */
export class TransactionScope<C> {
  #frames = new AsyncLocalStorage<TransactionFrame<C>>();

  /** The transaction the running code is in, if any is still open. */
  current(): TransactionFrame<C> | undefined {
    const frame = this.#frames.getStore();
    return frame && !frame.done ? frame : undefined;
  }

  /**
   * Runs `work` as a new level with `handle`: store calls inside it find `handle` through
   * {@linkcode TransactionScope.current}. The engine commits the level after this resolves and
   * then calls {@linkcode TransactionScope.committed} with the frame; a level that failed is
   * simply dropped, hooks and all.
   */
  async run<T>(
    handle: C,
    work: () => Promise<T>,
    flat = false,
  ): Promise<{ result: T; frame: TransactionFrame<C> }> {
    const frame = newFrame(handle, flat);
    try {
      const result = await this.#frames.run(frame, work);
      return { result, frame };
    } finally {
      frame.done = true;
    }
  }

  /** Like {@linkcode TransactionScope.run}, for work that never awaits. */
  runSync<T>(handle: C, work: () => T): { result: T; frame: TransactionFrame<C> } {
    const frame = newFrame(handle, false);
    try {
      return { result: this.#frames.run(frame, work), frame };
    } finally {
      frame.done = true;
    }
  }

  /**
   * Runs `work` nested in the flat transaction `outer`, as part of it: what it throws is noted
   * on `outer`, which then must not commit, and thrown on.
   */
  async nested<T>(outer: TransactionFrame<C>, work: () => T | Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      outer.failure ??= { error: err };
      throw err;
    }
  }

  /** Throws {@linkcode NestedWorkFailed} if work nested in the flat level `frame` failed. */
  mayCommit(frame: TransactionFrame<C>): void {
    if (frame.failure) throw new NestedWorkFailed(frame.failure.error);
  }

  /**
   * Hands the hooks and the rows put off of a level that committed to the level around it, or
   * runs the hooks (the rows were written by {@linkcode TransactionScope.writeDeferred}).
   */
  committed(frame: TransactionFrame<C>, outer: TransactionFrame<C> | undefined): void {
    if (!outer) return runHooks(frame.hooks);
    outer.hooks.push(...frame.hooks);
    for (const [writer, rows] of frame.deferred) putOff(outer, writer, rows);
  }

  /**
   * Puts `row` off to the end of the outermost transaction, where `writer` writes it with the
   * others of that transaction in one go; false outside a transaction (the caller writes it
   * now). A row put off in a level that rolls back is dropped with it.
   */
  defer<T>(writer: DeferredWrite<C, T>, ...rows: T[]): boolean {
    const frame = this.current();
    if (!frame) return false;
    putOff(frame, writer as DeferredWrite<C, unknown>, rows);
    return true;
  }

  /** Writes the rows put off in the outermost level `frame`: the engine calls it before commit. */
  async writeDeferred(frame: TransactionFrame<C>): Promise<void> {
    const afterCommit = (hook: () => void) => frame.hooks.push(hook);
    for (const [writer, rows] of frame.deferred) {
      await writer.write(rows, frame.handle, afterCommit);
    }
  }

  /** Adds `hook` to the current level, or runs it at once outside a transaction. */
  afterCommit(hook: () => void): void {
    const frame = this.current();
    if (frame) frame.hooks.push(bindToActiveContext(hook));
    else runHooks([hook]);
  }
}

/** A new level of transaction on `handle`, nothing in it yet. */
function newFrame<C>(handle: C, flat: boolean): TransactionFrame<C> {
  return { handle, hooks: [], done: false, flat, deferred: new Map() };
}

/** Adds `rows` to those `writer` writes at the end of `frame`'s transaction. */
function putOff<C>(frame: TransactionFrame<C>, writer: DeferredWrite<C, unknown>, rows: unknown[]) {
  const before = frame.deferred.get(writer);
  if (before) before.push(...rows);
  else frame.deferred.set(writer, rows);
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
