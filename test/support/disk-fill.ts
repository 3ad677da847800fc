import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/** Fills the file system of `dir` until ENOSPC; returns the filler's path (remove it to free the space). */
export function fill(dir: string): string {
  const path = join(dir, 'filler');
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(64 * 1024, 7);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  } finally {
    closeSync(fd);
  }
  return path;
}
