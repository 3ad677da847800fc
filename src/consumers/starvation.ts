import { readFileSync } from 'node:fs';

/**
 * Tells a starved replica from a hung one. Replicas run below the capture (`consumers.niceness`,
 * SCHED_IDLE on Linux: see worker/priority.ts), so on a machine the capture keeps busy a replica may
 * get no CPU for a while: its heartbeats and batches stop although nothing is wrong with it. Linux
 * counts the time a thread waited in the run queue (`/proc/<pid>/schedstat`, second field, ns):
 * a replica whose main thread spent most of the last interval waiting there is starved, and is not
 * killed for silence; a hung one sleeps (awaits forever) or runs (a busy loop), and waits little.
 */
export class StarvationProbe {
  #last: { at: number; waitNs: number } | undefined;

  constructor(
    private readonly pid: number | undefined,
    private readonly read: (path: string) => string = (path) => readFileSync(path, 'utf8'),
  ) {}

  /**
   * Fraction (0-1) of the time since the previous call that the main thread waited for a CPU;
   * `undefined` on the first call, or where the kernel does not say.
   */
  waitShare(nowMs: number): number | undefined {
    const waitNs = this.#waitNs();
    const last = this.#last;
    this.#last = waitNs === undefined ? undefined : { at: nowMs, waitNs };
    if (waitNs === undefined || !last || nowMs <= last.at) return undefined;
    return Math.min(1, (waitNs - last.waitNs) / 1e6 / (nowMs - last.at));
  }

  #share: number | undefined;

  /** Takes a sample (the supervisor does at each health check); returns `starved`. */
  sample(nowMs: number): boolean {
    this.#share = this.waitShare(nowMs);
    return this.starved;
  }

  /** It waited for a CPU at least half of the interval between the last two samples. */
  get starved(): boolean {
    return this.#share !== undefined && this.#share >= 0.5;
  }

  #waitNs(): number | undefined {
    if (this.pid === undefined) return undefined;
    try {
      const wait = Number(this.read(`/proc/${this.pid}/schedstat`).split(' ')[1]);
      return Number.isFinite(wait) ? wait : undefined;
    } catch {
      return undefined;
    }
  }
}
