import { readFileSync } from 'node:fs';
import { freeBytes, RESUME_FREE_BYTES } from '../log/embedded/disk-space.ts';
import { type CaptureStatus, isAlive } from './capture-status.ts';

/**
 * A running capture rewrites its status file every second or so. Figures older than this come
 * from a process that is alive but not running (stopped by a signal, starved, swapping, stuck):
 * `tributary status` calls it unresponsive and shows how old the figures are, never as live.
 */
export const UNRESPONSIVE_AFTER_MS = 10_000;

/** Below this, the data directory's disk counts as full even before the capture could say so. */
const FULL_BELOW_BYTES = 1024 * 1024;

export interface CaptureLiveness {
  readonly state: 'running' | 'unresponsive' | 'stopped' | 'disk full';
  /** Age of the status figures in seconds (null without a status file). */
  readonly ageSeconds: number | null;
  /** Why it is unresponsive, when the OS says (e.g. stopped by a signal). */
  readonly reason?: string;
}

export function captureLiveness(
  status: CaptureStatus | null,
  dataDir: string,
  now = Date.now(),
): CaptureLiveness {
  if (!status) return { state: 'stopped', ageSeconds: null };
  const ageSeconds = Math.max(0, Math.round((now - Date.parse(status.updatedAt)) / 100) / 10);
  if (!isAlive(status.pid)) return { state: 'stopped', ageSeconds };
  const fresh = ageSeconds * 1000 <= UNRESPONSIVE_AFTER_MS;
  // A full disk may also keep the status file from being rewritten: ask the file system.
  const free = freeBytes(dataDir);
  if ((fresh && status.diskFull) || (free !== null && free < FULL_BELOW_BYTES)) {
    const f = free ?? status.diskFull?.freeBytes ?? 0;
    return {
      state: 'disk full',
      ageSeconds,
      reason: `the event log's disk has ${f} bytes free: appending stopped (the slot keeps the changes); capture resumes by itself once ${RESUME_FREE_BYTES} bytes are free`,
    };
  }
  if (fresh) return { state: 'running', ageSeconds };
  const reason = processState(status.pid);
  return { state: 'unresponsive', ageSeconds, ...(reason ? { reason } : {}) };
}

/** Linux's word for a process that does not run (from /proc/<pid>/stat), if it says one. */
function processState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const code = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (code === 'T' || code === 't')
      return 'the process is stopped (SIGSTOP or a debugger); SIGCONT resumes it';
    if (code === 'D') return 'the process waits on the disk (uninterruptible)';
    if (code === 'Z') return 'the process has exited (zombie)';
    return undefined;
  } catch {
    return undefined;
  }
}
