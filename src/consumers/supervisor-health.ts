import { residentLimitMb, residentMb } from './process-memory.ts';
import type { ReplicaProcess } from './supervisor-replica.ts';
import type { ConsumerHooks, SupervisionSettings } from './supervisor-settings.ts';

/** Kills for silence: they count toward crash loops in a row (supervisor-policy.ts). */
const HUNG = { hung: true } as const;

/**
 * Checks the replicas of one consumer at one reconcile: kills those above their memory limit,
 * not ready in time, silent (no heartbeat), hung (work in flight without progress, a revoke
 * unanswered) or not exiting after a stop; their exits are then handled as crashes. Returns
 * whether one replica is healthy (ready for a while and not stuck), which resets the backoff.
 */
export function checkReplicaHealth(
  consumer: string,
  replicas: Iterable<ReplicaProcess>,
  s: Pick<SupervisionSettings, 'startTimeoutMs' | 'heartbeatTimeoutMs' | 'hangTimeoutMs' | 'backoffMaxMs'>,
  hooks: Pick<ConsumerHooks, 'alert'>,
  now: number,
): boolean {
  let healthy = false;
  for (const r of replicas) {
    const rss = r.alive ? residentMb(r.pid) : undefined;
    if (rss !== undefined && rss > residentLimitMb(r.memoryMb)) {
      r.memoryExceeded = true;
      r.kill(
        `resident memory ${Math.round(rss)} MB above the limit of ${residentLimitMb(r.memoryMb)} MB (memoryMb ${r.memoryMb} + runtime)`,
      );
      continue;
    }
    if (r.state === 'starting') {
      // Loading a module below the capture on a busy machine: waiting for a CPU is not a hang.
      if (r.starvation.sample(now)) r.startStarvedMs += now - (r.startCheckedAt ?? r.startedAt);
      r.startCheckedAt = now;
      if (now - r.startedAt - r.startStarvedMs > s.startTimeoutMs) {
        r.kill(`not ready within ${s.startTimeoutMs} ms (not counting ${r.startStarvedMs} ms starved)`, HUNG);
      }
    } else if (r.state === 'ready' || r.state === 'stopping') {
      // Replicas run below the capture: one that only waits for a CPU is starved, not hung.
      if (r.starvation.sample(now)) continue;
      if (now - r.lastHeartbeatAt > s.heartbeatTimeoutMs) {
        r.kill(`no heartbeat for ${now - r.lastHeartbeatAt} ms`, HUNG);
      } else if (r.inFlight > 0 && now - r.lastProgressAt > s.hangTimeoutMs) {
        r.kill(
          `hung: ${r.inFlight} records in flight without progress for ${now - r.lastProgressAt} ms`,
          HUNG,
        );
        hooks.alert({
          consumer,
          kind: 'hung',
          message: `replica ${r.replica} hung (no progress for ${now - r.lastProgressAt} ms); restarted`,
          at: now,
        });
      } else {
        for (const { sentAt } of r.revoking.values()) {
          if (now - sentAt > s.hangTimeoutMs)
            r.kill(`revoke not answered within ${s.hangTimeoutMs} ms`, HUNG);
        }
      }
      if (
        r.stopRequestedAt !== undefined &&
        now - r.stopRequestedAt > s.hangTimeoutMs + s.heartbeatTimeoutMs
      ) {
        r.kill('did not drain and exit in time');
      }
    }
    // Healthy = ready for a while and not stuck on records (a hung handler still heartbeats).
    if (
      r.state === 'ready' &&
      r.readyAt !== undefined &&
      now - r.readyAt > s.backoffMaxMs &&
      (r.inFlight === 0 || now - r.lastProgressAt < s.backoffMaxMs)
    ) {
      healthy = true;
    }
  }
  return healthy;
}
