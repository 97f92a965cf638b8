/**
 * Group flush of a SQLite write-ahead log, off the event loop. With `synchronous=FULL` SQLite
 * calls fsync inside `COMMIT`, and `node:sqlite` is synchronous: the whole service (HTTP, the
 * broker connections) stood still for every flush. Instead, commits are written with
 * `synchronous=NORMAL` (to the page cache, in order) and this flushes the log file with
 * `fdatasync` on Deno's blocking-task pool while the event loop goes on. Whoever must not act
 * before the data is on disk (answer 201, acknowledge a message, publish an outbox row) awaits
 * {@linkcode WalFlush.flush}; the commits made while one flush runs share the next.
 * @module
 */

/** Flushes one WAL file; commits that ask while a flush runs share the next one. */
export class WalFlush {
  #file: Deno.FsFile | undefined;
  #running: Promise<void> | undefined;
  #queued: Promise<void> | undefined;
  #closed = false;

  /**
   * @param path the WAL file (`<database>-wal`), opened at the first flush
   * @param syncData flushes the open file; tests replace it to watch the flushes
   */
  constructor(
    readonly path: string,
    private readonly syncData: (file: Deno.FsFile) => Promise<void> = (file) => file.syncData(),
  ) {}

  /**
   * Resolves once everything written to the log before this call is on disk. A flush already
   * running may have started before that write, so the caller waits for the next one, which
   * every caller that arrives meanwhile shares.
   */
  flush(): Promise<void> {
    if (this.#queued) return this.#queued;
    const running = this.#running;
    if (!running) return this.#start();
    this.#queued = running.then(noop, noop).then(() => {
      this.#queued = undefined;
      return this.#start();
    });
    return this.#queued;
  }

  /** Waits for the flushes under way, then closes the file. */
  async close(): Promise<void> {
    await (this.#queued ?? this.#running)?.catch(noop);
    this.#closed = true;
    this.#file?.close();
    this.#file = undefined;
  }

  #start(): Promise<void> {
    const run = this.#flushOnce().finally(() => {
      if (this.#running === run) this.#running = undefined;
    });
    this.#running = run;
    return run;
  }

  async #flushOnce(): Promise<void> {
    if (this.#closed) throw new Error(`Cannot flush ${this.path}: the database is closed`);
    // fdatasync flushes the file's pages whichever descriptor wrote them; reading is enough.
    this.#file ??= await Deno.open(this.path, { read: true });
    await this.syncData(this.#file);
  }
}

function noop(): void {}
