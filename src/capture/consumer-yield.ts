import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { writeYieldLease, YIELD_LEASE_MS } from './yield-lease.ts';

/**
 * When the consumer replicas of this data directory stand aside for the capture
 * (`consumers.yieldToCapture`): `auto` while the capture catches up on a machine without a spare
 * core, `always` while it catches up, `never`.
 */
export type YieldMode = 'auto' | 'always' | 'never';

/** The machine's CPU time since boot, in clock ticks (`/proc/stat`). */
export interface CpuTimes {
  readonly cores: number;
  /** Used by tasks at normal priority (user, system, interrupts, stolen by the hypervisor). */
  readonly busy: number;
  /** Idle, waiting on I/O, or used by niced tasks, which any normal task preempts. */
  readonly spare: number;
}

/** Linux only; `null` elsewhere (then `auto` never holds consumers back). */
export function readCpuTimes(): CpuTimes | null {
  let text: string;
  try {
    text = readFileSync('/proc/stat', 'utf8');
  } catch {
    return null;
  }
  const lines = text.split('\n');
  // cpu  user nice system idle iowait irq softirq steal guest guest_nice (guest time is in user)
  const fields = lines[0]?.split(/\s+/).slice(1, 9).map(Number);
  if (
    !lines[0]?.startsWith('cpu ') ||
    !fields ||
    fields.length < 8 ||
    fields.some((n) => !Number.isFinite(n))
  )
    return null;
  const [user, nice, system, idle, iowait, irq, softirq, steal] = fields as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const cores = lines.filter((line) => /^cpu\d/.test(line)).length;
  return {
    cores: Math.max(1, cores),
    busy: user + system + irq + softirq + steal,
    spare: nice + idle + iowait,
  };
}

export interface ConsumerYieldOptions {
  readonly dataDir: string;
  readonly mode: YieldMode;
  readonly logger: Logger;
  /** WAL the server has and the capture has not received yet, in bytes; `null` when unknown. */
  readonly backlog: () => Promise<number | null>;
  /**
   * The backlog when the capture starts, before the stream delivered anything (the slot's lag):
   * a catch-up that begins holds the consumers from its first record on.
   */
  readonly startBacklog?: () => Promise<number | null>;
  /** A count that grows with every message the capture receives. */
  readonly received: () => number;
  readonly cpu?: () => CpuTimes | null;
  readonly clock?: () => number;
  readonly intervalMs?: number;
}

export interface ConsumerYieldStats {
  readonly holding: boolean;
  /** Times the consumers were held back. */
  readonly holds: number;
  /** Milliseconds they were held back, the current hold included. */
  readonly heldMs: number;
}

/** A backlog from which the capture counts as catching up, and below which it stops counting. */
export const HOLD_BACKLOG_BYTES = 1024 * 1024;
const RELEASE_BACKLOG_BYTES = 256 * 1024;
/** Spare cores under which consumers are held (`auto`), and from which a hold ends. */
const HOLD_SPARE_CORES = 1;
const RELEASE_SPARE_CORES = 1.5;
/** The capture counts as receiving while its last message came this recently. */
const ACTIVE_WINDOW_MS = 500;
/** A hold taken at start-up lasts at least this long: what the policy measures needs time. */
const START_HOLD_MS = 1000;
/** The spare CPU is measured over about this long. */
const CPU_WINDOW_MS = 500;

/**
 * Holds the consumer replicas of this data directory back (the lease of capture-yield.ts) while
 * the capture catches up with its source on a machine that has no core to spare for them.
 *
 * Why: replicas run below the capture (`consumers.niceness`: SCHED_IDLE), yet five replicas that
 * read all the time still cost a capture that drains a backlog on two cores about a fifth of its
 * pace (bench/README.md): it finds them on the CPU each time it wakes, and shares caches and the
 * WAL with them; held, they cost it a few percent. During such a catch-up the replicas would fall
 * behind anyway; reading after the capture has caught up costs them the same CPU and lets the
 * capture free the source's WAL sooner.
 *
 * Every `intervalMs`:
 * - `auto`: the spare CPU of the last ~500 ms (idle, or used by niced tasks such as the replicas)
 *   must be under one core; a hold ends from 1.5. Elsewhere than Linux, `auto` never holds.
 * - the capture must have received a message in the last 500 ms, and the server's WAL must be
 *   at least 1 MiB ahead of what the stream delivered; a hold ends below 256 KiB, when no message
 *   came, or when the backlog cannot be read.
 * A capture that starts behind holds from before its first append (`startBacklog`, see
 * `#holdAtStart`). While it holds, the lease is renewed every tick, also while a decision still
 * waits for the backlog (for at most one lease: the capture's loop answers late while it drains);
 * it is let go at once when the hold ends or at `stop`, and lapses by itself two seconds after a
 * capture that died.
 */
export class ConsumerYield {
  readonly #o: ConsumerYieldOptions;
  readonly #clock: () => number;
  readonly #cpu: () => CpuTimes | null;
  readonly #samples: { at: number; cpu: CpuTimes }[] = [];
  #timer: NodeJS.Timeout | undefined;
  #ticking = false;
  #decidingSince = 0;
  #stopped = false;
  #lastReceived: number;
  #lastReceivedAt = Number.NEGATIVE_INFINITY;
  #heldSince: number | undefined;
  #holds = 0;
  #heldMs = 0;
  #writeFailed = false;
  /** Until then a hold taken at start-up goes on whatever the policy says. */
  #startHoldUntil = Number.NEGATIVE_INFINITY;

  constructor(options: ConsumerYieldOptions) {
    this.#o = options;
    this.#clock = options.clock ?? Date.now;
    this.#cpu = options.cpu ?? readCpuTimes;
    this.#lastReceived = options.received();
  }

  get stats(): ConsumerYieldStats {
    const current = this.#heldSince === undefined ? 0 : this.#clock() - this.#heldSince;
    return { holding: this.#heldSince !== undefined, holds: this.#holds, heldMs: this.#heldMs + current };
  }

  start(): void {
    if (this.#o.mode === 'never' || this.#timer || this.#stopped) return;
    // The first tick then measures the spare CPU over its interval already.
    if (this.#o.mode === 'auto') this.#spareCores();
    if (this.#o.startBacklog) void this.#holdAtStart(this.#o.startBacklog);
    this.#timer = setInterval(() => void this.tick(), this.#o.intervalMs ?? 100);
    this.#timer.unref();
  }

  /** Idempotent: lets the consumers go. */
  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#release();
  }

  /**
   * A capture that starts behind holds the consumers before its first append: replicas that read
   * meanwhile at idle priority get preempted inside their reads and keep the log's WAL from being
   * reset (bench/README.md), and `auto` can only tell the spare CPU once the catch-up uses it.
   * The policy decides from START_HOLD_MS on.
   */
  async #holdAtStart(startBacklog: () => Promise<number | null>): Promise<void> {
    if (this.#o.mode === 'auto' && this.#cpu() === null) return; // `auto` never holds there
    let backlog: number | null;
    try {
      backlog = await startBacklog();
    } catch (error) {
      this.#o.logger.debug({ err: error }, 'cannot read the source backlog');
      return;
    }
    if (this.#stopped || backlog === null || backlog < HOLD_BACKLOG_BYTES) return;
    this.#startHoldUntil = this.#clock() + START_HOLD_MS;
    this.#hold();
  }

  /** One decision (the timer's; exposed for tests). */
  async tick(): Promise<void> {
    if (this.#stopped) return;
    if (this.#ticking) {
      // The previous decision still waits for the backlog (the capture's loop is busy with the
      // stream it drains): the hold goes on meanwhile, for as long as one lease.
      if (this.#heldSince !== undefined && this.#clock() - this.#decidingSince < YIELD_LEASE_MS) this.#hold();
      return;
    }
    this.#decidingSince = this.#clock();
    this.#ticking = true;
    try {
      const hold = (await this.#shouldHold()) || this.#clock() < this.#startHoldUntil;
      if (this.#stopped) return;
      if (hold) this.#hold();
      else this.#release();
    } finally {
      this.#ticking = false;
    }
  }

  async #shouldHold(): Promise<boolean> {
    const holding = this.#heldSince !== undefined;
    const received = this.#o.received();
    if (received !== this.#lastReceived) {
      this.#lastReceived = received;
      this.#lastReceivedAt = this.#clock();
    }
    // An append that blocks the loop for a tick or two does not end a hold.
    const active = this.#clock() - this.#lastReceivedAt < ACTIVE_WINDOW_MS;
    if (this.#o.mode === 'auto') {
      const spare = this.#spareCores();
      if (spare === null || spare >= (holding ? RELEASE_SPARE_CORES : HOLD_SPARE_CORES)) return false;
    }
    if (!active) return false;
    let backlog: number | null;
    try {
      backlog = await this.#o.backlog();
    } catch (error) {
      this.#o.logger.debug({ err: error }, 'cannot read the source backlog');
      return false;
    }
    return backlog !== null && backlog >= (holding ? RELEASE_BACKLOG_BYTES : HOLD_BACKLOG_BYTES);
  }

  /** Cores idle or running niced tasks over the last ~CPU_WINDOW_MS; `null` until known. */
  #spareCores(): number | null {
    const cpu = this.#cpu();
    if (!cpu) return null;
    const now = this.#clock();
    this.#samples.push({ at: now, cpu });
    while (this.#samples.length > 2 && now - this.#samples[1]!.at >= CPU_WINDOW_MS) this.#samples.shift();
    const first = this.#samples[0]!.cpu;
    const busy = cpu.busy - first.busy;
    const spare = cpu.spare - first.spare;
    if (busy + spare <= 0) return null;
    return (spare / (busy + spare)) * cpu.cores;
  }

  #hold(): void {
    const now = this.#clock();
    if (this.#heldSince === undefined) {
      this.#heldSince = now;
      this.#holds++;
      this.#o.logger.info('capture catching up with the source: consumers wait until it has');
    }
    this.#write(now + YIELD_LEASE_MS);
  }

  #release(): void {
    if (this.#heldSince === undefined) return;
    const held = this.#clock() - this.#heldSince;
    this.#heldMs += held;
    this.#heldSince = undefined;
    this.#write(0);
    this.#o.logger.info({ heldMs: held }, 'capture caught up: consumers read again');
  }

  #write(until: number): void {
    try {
      writeYieldLease(this.#o.dataDir, until);
      this.#writeFailed = false;
    } catch (error) {
      if (!this.#writeFailed) this.#o.logger.warn({ err: error }, 'cannot write the consumers’ yield lease');
      this.#writeFailed = true;
    }
  }
}
