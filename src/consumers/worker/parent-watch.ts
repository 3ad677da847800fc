import { Worker } from 'node:worker_threads';

/**
 * Ends this replica process once its supervisor is gone, even when its event loop is blocked.
 *
 * A replica stops by itself when its IPC channel closes (`disconnect`), draining within its
 * shutdown deadline; but a handler spinning in `while (true) {}` never returns to the event loop,
 * so neither that handler nor the deadline's timer runs, and a supervisor killed with `kill -9`
 * left such a replica running (and burning a core) for good: its parent became pid 1. This thread
 * of its own polls the parent pid every 500 ms; when it changed (the process was re-parented), it
 * waits `graceMs` (the replica's own shutdown deadline, plus a margin) and then sends SIGKILL to
 * the whole process. A replica that drains and exits in time ends the thread with it.
 *
 * Cost: one thread with a small heap (about 10 MB of resident memory). Linux and macOS report the
 * new parent at once; elsewhere `process.ppid` may not change and the watch does nothing.
 */
export function watchParent(graceMs: number): void {
  const worker = new Worker(
    `const { workerData } = require('node:worker_threads');
     const timer = setInterval(() => {
       if (process.ppid === workerData.ppid) return;
       clearInterval(timer);
       setTimeout(() => process.kill(workerData.pid, 'SIGKILL'), workerData.graceMs);
     }, 500);`,
    {
      eval: true,
      workerData: { ppid: process.ppid, pid: process.pid, graceMs },
      resourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 2 },
      stdout: true,
      stderr: true,
    },
  );
  worker.on('error', () => {
    // A watch that could not start leaves the replica as it was before this existed.
  });
  worker.unref();
}
