import { readFileSync } from 'node:fs';

/**
 * The whole-process memory limit of a consumer replica. `memoryMb` caps the V8 heap
 * (`--max-old-space-size`), which leaves Buffers, typed arrays and native allocations unbounded:
 * the supervisor therefore also watches each replica's resident set size (RSS, Linux
 * `/proc/<pid>/status`) at every health check and kills a replica above
 * `memoryMb + RUNTIME_ALLOWANCE_MB` (the runtime's own code, young generation and tsx take about
 * 60-100 MB before any user data). Where `/proc` is not available the check is skipped.
 *
 * cgroup v2 would let the kernel enforce the same limit without a polling window; Tributary does
 * not place replicas in cgroups (see docs/security.md): run it under a service manager or
 * container runtime with a memory limit for a hard bound on the whole pipeline.
 */
export const RUNTIME_ALLOWANCE_MB = 128;

export function residentLimitMb(memoryMb: number): number {
  return memoryMb + RUNTIME_ALLOWANCE_MB;
}

/** Resident memory of a process in MB, or undefined (gone, or no /proc). */
export function residentMb(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1];
    return kb === undefined ? undefined : Number(kb) / 1024;
  } catch {
    return undefined;
  }
}
