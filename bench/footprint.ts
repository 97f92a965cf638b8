/** Footprint of each process: peak resident memory and CPU time, sampled from `/proc/<pid>`. */
import { round } from "./stats.ts";

/** Memory and CPU of one process over the measured phases. */
export interface Footprint {
  /** Highest RSS seen, in MB: the larger of sampled `VmRSS` and the kernel's own peak, `VmHWM`. */
  peak_rss_mb: number;
  /** RSS at the last sample, in MB. */
  last_rss_mb: number;
  /** CPU time used (user + system) while sampled, in seconds. */
  cpu_s: number;
  /**
   * Time its threads were ready to run but waited for a CPU, in seconds: large values mean
   * the machine was oversubscribed (by this run or by other work) and rates are understated.
   */
  cpu_wait_s: number;
  /** How many samples found the process running. */
  samples: number;
  /**
   * Write-class system calls (`syscw` of `/proc/<pid>/io`): socket and file writes, the part of
   * a process's CPU that batching cuts, counted exactly however busy the machine is.
   */
  writes?: number;
}

/** One reading of a process's counters. */
export interface ProcessReading {
  rssKb: number;
  /** Peak RSS of the process's lifetime (`VmHWM`). */
  hwmKb: number;
  /** User plus system CPU time, in ms. */
  cpuMs: number;
  /** Run-queue wait summed over its threads, in ms (0 where the kernel keeps no schedstat). */
  waitMs: number;
  /** Write-class system calls so far (0 where the kernel keeps no I/O accounting). */
  writes: number;
}

const TICKS_PER_SECOND = 100;

/** Reads memory and CPU counters of `pid`; undefined when the process is gone. */
export async function readProcess(pid: number): Promise<ProcessReading | undefined> {
  try {
    const status = await Deno.readTextFile(`/proc/${pid}/status`);
    // The command name in stat may hold spaces; the fields after its closing parenthesis do not.
    const stat = (await Deno.readTextFile(`/proc/${pid}/stat`)).split(") ")[1].split(" ");
    const field = (name: string) =>
      Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1]);
    const rssKb = field("VmRSS");
    if (!Number.isFinite(rssKb)) return undefined;
    return {
      rssKb,
      hwmKb: field("VmHWM") || rssKb,
      cpuMs: ((Number(stat[11]) + Number(stat[12])) * 1000) / TICKS_PER_SECOND,
      waitMs: await runQueueWaitMs(pid),
      writes: await writeCalls(pid),
    };
  } catch {
    return undefined;
  }
}

async function writeCalls(pid: number): Promise<number> {
  const io = await Deno.readTextFile(`/proc/${pid}/io`).catch(() => "");
  return Number(/^syscw:\s+(\d+)/m.exec(io)?.[1]) || 0;
}

async function runQueueWaitMs(pid: number): Promise<number> {
  let waitNs = 0;
  try {
    for await (const task of Deno.readDir(`/proc/${pid}/task`)) {
      const schedstat = await Deno.readTextFile(`/proc/${pid}/task/${task.name}/schedstat`)
        .catch(() => "");
      waitNs += Number(schedstat.split(" ")[1]) || 0;
    }
  } catch {
    // gone, or no schedstat on this kernel
  }
  return waitNs / 1e6;
}

interface Tracked {
  peakKb: number;
  lastKb: number;
  samples: number;
  /** Counters per pid: first and latest reading, so a restarted process adds its new life. */
  lives: Map<number, { first: ProcessReading; last: ProcessReading }>;
}

/**
 * Samples named processes every `intervalMs` until stopped. A process that is restarted (a new
 * pid) keeps one record: its peak is the peak over all its lives and its CPU the sum of them.
 * CPU counts from the first sample of each life, so start-up before sampling began is left out.
 */
export class FootprintSampler {
  #tracked = new Map<string, Tracked>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #sampling: Promise<void> | undefined;

  /** @param pids the current pid of each process by name, undefined while it is not running */
  constructor(
    private readonly pids: () => Promise<Record<string, number | undefined>>,
    private readonly intervalMs = 250,
  ) {}

  /** Takes a first sample and keeps sampling in the background. */
  async start(): Promise<void> {
    await this.sample();
    this.#timer ??= setInterval(() => {
      this.#sampling ??= this.sample().finally(() => this.#sampling = undefined);
    }, this.intervalMs);
  }

  /** Takes one sample of every process now. */
  async sample(): Promise<void> {
    for (const [name, pid] of Object.entries(await this.pids())) {
      if (pid === undefined) continue;
      const reading = await readProcess(pid);
      if (!reading) continue;
      const t = this.#tracked.get(name) ??
        { peakKb: 0, lastKb: 0, samples: 0, lives: new Map() };
      this.#tracked.set(name, t);
      t.peakKb = Math.max(t.peakKb, reading.rssKb, reading.hwmKb);
      t.lastKb = reading.rssKb;
      t.samples++;
      const life = t.lives.get(pid);
      if (life) life.last = reading;
      else t.lives.set(pid, { first: reading, last: reading });
    }
  }

  /** Stops sampling after one last sample; returns the footprint of each process seen. */
  async stop(): Promise<Record<string, Footprint>> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#sampling;
    await this.sample();
    const mb = (kb: number) => round(kb / 1024, 1);
    const seconds = (ms: number) => round(ms / 1000, 2);
    return Object.fromEntries(
      [...this.#tracked].map(([name, t]) => {
        const lives = [...t.lives.values()];
        const sum = (key: "cpuMs" | "waitMs" | "writes") =>
          lives.reduce((total, l) => total + l.last[key] - l.first[key], 0);
        return [name, {
          peak_rss_mb: mb(t.peakKb),
          last_rss_mb: mb(t.lastKb),
          cpu_s: seconds(sum("cpuMs")),
          cpu_wait_s: seconds(sum("waitMs")),
          samples: t.samples,
          writes: sum("writes"),
        }];
      }),
    );
  }
}
