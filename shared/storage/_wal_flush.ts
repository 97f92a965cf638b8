/**
 * Group flush of a SQLite write-ahead log, off the event loop. With `synchronous=FULL` SQLite
 * calls fsync inside `COMMIT`, and `node:sqlite` is synchronous: the whole service (HTTP, the
 * broker connections) stood still for every flush. Instead, commits are written with
 * `synchronous=NORMAL` (to the page cache, in order) and this flushes the log file with
 * `fdatasync` on Deno's blocking-task pool while the event loop goes on. Whoever must not act
 * before the data is on disk (answer 201, acknowledge a message, publish an outbox row) awaits
 * {@linkcode WalFlush.flush}; the commits made while one flush runs share the next, and a caller
 * whose commits are already on disk does not wait at all.
 * @module
 */

/**
 * Flushes one WAL file. Commits are numbered as they are written; a flush covers every commit
 * numbered before it started, and commits that ask while one runs share the next.
 */
export class WalFlush {
  #file: Deno.FsFile | undefined;
  #written = 0;
  #flushed = 0;
  #running: { covers: number; done: Promise<void> } | undefined;
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

  /** Counts a commit just written that must reach the disk; returns its number. */
  committed(): number {
    return ++this.#written;
  }

  /**
   * Resolves once commit `upTo` (by default every commit counted so far) is on disk: at once
   * when a finished flush covered it, with the running flush when that one started after it,
   * or with the next flush, which every caller that arrives meanwhile shares.
   */
  flush(upTo: number = this.#written): Promise<void> {
    if (upTo <= this.#flushed) return Promise.resolve();
    const running = this.#running;
    if (!running) return this.#start();
    if (upTo <= running.covers) return running.done;
    this.#queued ??= running.done.then(noop, noop).then(() => {
      this.#queued = undefined;
      return this.#start();
    });
    return this.#queued;
  }

  /** Waits for the flushes under way, then closes the file. */
  async close(): Promise<void> {
    await (this.#queued ?? this.#running?.done)?.catch(noop);
    this.#closed = true;
    this.#file?.close();
    this.#file = undefined;
  }

  #start(): Promise<void> {
    const covers = this.#written;
    const done: Promise<void> = this.#flushOnce().then(() => {
      this.#flushed = Math.max(this.#flushed, covers);
    }).finally(() => {
      if (this.#running?.done === done) this.#running = undefined;
    });
    this.#running = { covers, done };
    return done;
  }

  async #flushOnce(): Promise<void> {
    if (this.#closed) throw new Error(`Cannot flush ${this.path}: the database is closed`);
    // fdatasync flushes the file's pages whichever descriptor wrote them; reading is enough.
    this.#file ??= await Deno.open(this.path, { read: true });
    await this.syncData(this.#file);
  }
}

function noop(): void {}
