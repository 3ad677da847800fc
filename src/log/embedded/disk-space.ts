import { statfsSync } from 'node:fs';
import { dirname } from 'node:path';
import { DiskFullError } from '../../core/errors.ts';

/** Free space the capture waits for after a full disk before appending again. */
export const RESUME_FREE_BYTES = 16 * 1024 * 1024;

/** Free bytes for an unprivileged writer on the file system holding `path`; null if unknown. */
export function freeBytes(path: string): number | null {
  try {
    const s = statfsSync(path);
    return Number(s.bavail) * Number(s.bsize);
  } catch {
    return null;
  }
}

/** The DiskFullError of an SQLITE_FULL on `file`, with its wait for space to return. */
export function diskFullError(file: string, action: string, cause: unknown): DiskFullError {
  const dir = dirname(file);
  const free = freeBytes(dir) ?? 0;
  return new DiskFullError(
    `The disk of the event log ${file} is full (SQLITE_FULL while trying to ${action}; ${free} bytes free): appending stopped, the slot keeps the changes; capture resumes once ${RESUME_FREE_BYTES} bytes are free`,
    {
      cause,
      freeBytes: free,
      neededBytes: RESUME_FREE_BYTES,
      spaceReturned: (signal) =>
        new Promise<void>((resolve, reject) => {
          const check = () => {
            if (signal?.aborted) {
              clearInterval(timer);
              reject(signal.reason);
            } else if ((freeBytes(dir) ?? 0) >= RESUME_FREE_BYTES) {
              clearInterval(timer);
              resolve();
            }
          };
          const timer = setInterval(check, 500);
          signal?.addEventListener('abort', check, { once: true });
        }),
    },
  );
}
