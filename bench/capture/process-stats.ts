import { readFileSync } from 'node:fs';

/** Peak resident set size of a live process (VmHWM), in bytes; null once it has exited. */
export function peakRssBytes(pid: number | 'self'): number | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = /^VmHWM:\s+(\d+) kB$/m.exec(status);
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** User + system CPU seconds a live process has used so far; null once it has exited. */
export function cpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return ticks / 100;
  } catch {
    return null;
  }
}

/**
 * Follows the CPU time of the walsender serving a slot (the server side of the decoding), polling
 * `pg_replication_slots.active_pid` and /proc; works when the server runs on this machine.
 */
export class WalSenderCpu {
  #pid: number | null = null;
  #seconds: number | null = null;
  #timer: NodeJS.Timeout | undefined;
  #busy = false;

  constructor(
    private readonly query: (slot: string) => Promise<number | null>,
    private readonly slot: string,
  ) {}

  start(intervalMs = 50): void {
    this.#timer = setInterval(() => {
      if (this.#busy) return;
      this.#busy = true;
      this.sample()
        .catch(() => undefined)
        .finally(() => {
          this.#busy = false;
        });
    }, intervalMs);
  }

  private async sample(): Promise<void> {
    if (this.#pid !== null) {
      const seconds = cpuSeconds(this.#pid);
      if (seconds !== null) {
        this.#seconds = seconds;
        return;
      }
    }
    const pid = await this.query(this.slot);
    if (pid !== null) {
      this.#pid = pid;
      this.#seconds = cpuSeconds(pid) ?? this.#seconds;
    }
  }

  /** The last CPU seconds seen (up to one interval short of the walsender's total). */
  stop(): number | null {
    clearInterval(this.#timer);
    return this.#seconds;
  }
}
