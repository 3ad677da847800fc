import type { ConsumerStatus } from '../consumers/control-store.ts';
import { idleReplicasNote } from '../consumers/partition-assignment.ts';
import type { Supervisor } from '../consumers/supervisor.ts';
import type { ConsumerSummary, SupervisorControl } from './control-plane-deps.ts';

/** The supervisor as the HTTP API drives it (in-process): summaries, and changes that return `false` for an unknown name. */
export function supervisorControl(supervisor: Supervisor): SupervisorControl {
  const known = (name: string) => supervisor.names.includes(name);
  const act = (name: string, fn: () => void) => {
    if (!known(name)) return Promise.resolve(false);
    fn();
    return Promise.resolve(true);
  };
  return {
    list: async () => supervisor.api.list().map(summary),
    scale: async (name, replicas) => {
      if (!(await act(name, () => supervisor.api.scale(name, replicas)))) return false;
      const note = idleReplicasNote(name, replicas, supervisor.api.status(name)?.partitions ?? 0);
      return note ? { note } : {};
    },
    pause: (name) => act(name, () => supervisor.api.pause(name)),
    resume: (name) => act(name, () => supervisor.api.resume(name)),
    restart: (name) => act(name, () => supervisor.api.restart(name)),
    registry: supervisor.metrics.registry,
  };
}

function summary(s: ConsumerStatus): ConsumerSummary {
  return {
    name: s.name,
    group: s.group ?? s.name,
    topics: s.topics,
    state: s.state,
    replicas: { desired: s.replicas.desired, running: s.replicas.ready },
    restarts: s.restarts,
    crashLooping: s.crashLooping,
    failure: s.failure ? { ...s.failure, at: new Date(s.failure.at).toISOString() } : null,
    lastError: s.lastError
      ? { message: s.lastError.message, at: new Date(s.lastError.at).toISOString() }
      : null,
    lagRecords: s.lag.records,
    lagSeconds: s.lag.records > 0 ? s.lag.seconds : null,
    processed: s.processed,
    failed: s.failed,
    deadLettered: s.deadLettered,
    counters: s.counters,
    warnings: s.warnings ?? [],
  };
}
