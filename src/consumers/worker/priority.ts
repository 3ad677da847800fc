/**
 * How a replica process steps out of the capture's way (`consumers.niceness` > 0).
 *
 * A niceness alone was not enough (bench/README.md, "capture with consumer groups"): with five
 * replicas keeping up, the capture's thread spent 2-4 s of a 5 s run waiting in the run queue
 * (`/proc/<pid>/schedstat`), against 0.2 s without replicas. The capture sleeps hundreds of times
 * a second (on PostgreSQL's stream, on the fsync of each append); on waking it finds both cores
 * running replicas, and Linux's scheduler (EEVDF) lets the running task finish its slice whatever
 * its niceness. Tasks of the SCHED_IDLE class are the exception: any other task preempts them at
 * once, and they only get the CPU time that others leave.
 *
 * Three steps on Linux, each best effort (a failure leaves the process as it was):
 * 1. the niceness on every thread (a priority is per thread; V8 and libuv started theirs before);
 * 2. the SCHED_IDLE class on every thread, through `chrt` (util-linux), since Node has no call for
 *    it; threads started later inherit it;
 * 3. the niceness on the process's autogroup when the process leads its own session (the
 *    supervisor forks replicas detached): with `kernel.sched_autogroup_enabled`, every session is
 *    a scheduling group of its own and a niceness only counts among the tasks of its group, so a
 *    detached replica's group would otherwise weigh as much as the capture's.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

/** `SCHED_IDLE` in `/proc/<pid>/stat`'s policy field. */
export const SCHED_IDLE = 5;

export interface LoweredPriority {
  readonly niceness: number;
  readonly idle: boolean;
  /** Settles once the autogroup's niceness is set (or given up): the kernel rate-limits it. */
  readonly autogroup: Promise<boolean>;
}

/** Lowers this process `niceness` below its parent's priority; nothing when `niceness` is 0. */
export function lowerPriority(niceness: number | undefined): LoweredPriority | undefined {
  if (!niceness || niceness <= 0) return undefined;
  const target = Math.min(19, getPriority(process.ppid) + niceness);
  for (const tid of threads()) {
    try {
      if (getPriority(tid) < target) setPriority(tid, target);
    } catch {
      // a thread that ended meanwhile, or a platform without priorities
    }
  }
  if (process.platform !== 'linux')
    return { niceness: target, idle: false, autogroup: Promise.resolve(false) };
  return { niceness: target, idle: idleClass(), autogroup: autogroupNiceness(target) };
}

function threads(): number[] {
  try {
    return readdirSync('/proc/self/task').map(Number);
  } catch {
    return [process.pid]; // not Linux: setpriority on the pid covers the process
  }
}

/** Fields of `/proc/self/stat` after the command name (which may hold spaces). */
function statFields(path: string): string[] {
  const stat = readFileSync(path, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

function idleClass(): boolean {
  try {
    execFileSync('chrt', ['-i', '-a', '-p', '0', String(process.pid)], { stdio: 'ignore', timeout: 5000 });
  } catch {
    // BusyBox's chrt has no -a: one call per thread
    for (const tid of threads()) {
      try {
        execFileSync('chrt', ['-i', '-p', '0', String(tid)], { stdio: 'ignore', timeout: 5000 });
      } catch {
        // no chrt, or a thread that ended meanwhile
      }
    }
  }
  try {
    return Number(statFields(`/proc/self/task/${process.pid}/stat`)[38]) === SCHED_IDLE;
  } catch {
    return false;
  }
}

/**
 * Only for a session leader: a process that shares its parent's session shares its autogroup, and
 * lowering that would lower the parent too. The kernel accepts one such change per 100 ms across
 * the machine (EAGAIN otherwise), so replicas started together retry.
 */
async function autogroupNiceness(niceness: number): Promise<boolean> {
  try {
    if (Number(statFields('/proc/self/stat')[3]) !== process.pid) return false;
  } catch {
    return false;
  }
  for (let attempt = 0; attempt < 50; attempt++) {
    try {
      writeFileSync('/proc/self/autogroup', String(niceness));
      // The kernel accepts the write even where it has no effect: a task in a cgroup other than
      // the root (a container, a systemd service) is not scheduled by its autogroup, and the
      // file then reads empty. Only a group that shows the niceness counts as lowered.
      return readFileSync('/proc/self/autogroup', 'utf8').trim().endsWith(` nice ${niceness}`);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') return false;
    }
    await new Promise((r) => setTimeout(r, 100 + Math.random() * 100).unref());
  }
  return false;
}
