import { type ChildProcess, fork } from 'node:child_process';
import { createRequire } from 'node:module';
import { getPriority, setPriority } from 'node:os';
import { pathToFileURL } from 'node:url';
import { LineSplitter, structureLine } from './consumer-logs.ts';
import type {
  ConsumerDescription,
  SupervisorToWorker,
  WorkerLaunch,
  WorkerToSupervisor,
} from './consumer-protocol.ts';
import { type PartitionKey, parsePartitionKey } from './partition-assignment.ts';
import { replicaEnv } from './replica-env.ts';
import { StarvationProbe } from './starvation.ts';

export type ReplicaState = 'starting' | 'ready' | 'stopping' | 'exited';

export interface ReplicaSpawn {
  readonly launch: WorkerLaunch;
  readonly workerEntry: string;
  readonly memoryMb: number;
  /** Environment variables the consumer declared (the rest of the environment is not given). */
  readonly env: readonly string[];
  /** Code version of the consumer this process runs (rolling updates replace older ones). */
  readonly generation: number;
  /** Unique per process for the supervisor's lifetime (the assignment's member id). */
  readonly seq: number;
  /** Where its output and the supervisor's notes about it go (the consumer's log file). */
  readonly log: { write(entry: object): void };
  readonly clock: () => number;
  onMessage(replica: ReplicaProcess, message: WorkerToSupervisor): void;
  onExit(replica: ReplicaProcess, code: number | null, signal: NodeJS.Signals | null): void;
}

/** tsx's loader, by absolute URL: the consumer folder need not see this package's node_modules. */
const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

/**
 * One replica: a child process running the worker entry, its IPC channel, its output captured
 * into the consumer's log file, and what the supervisor knows of it (owned partitions, pending
 * revokes, last heartbeat). Never throws into the supervisor: a dead channel is a dead replica.
 */
export class ReplicaProcess {
  readonly seq: number;
  readonly replica: number;
  readonly generation: number;
  readonly memoryMb: number;
  readonly env: readonly string[];
  readonly startedAt: number;
  readonly child: ChildProcess;
  state: ReplicaState = 'starting';
  description: ConsumerDescription | undefined;
  readyAt: number | undefined;
  lastHeartbeatAt: number;
  lastProgressAt: number;
  inFlight = 0;
  /** Partitions this process may be reading: assigned, and not yet confirmed revoked. */
  readonly owned = new Set<PartitionKey>();
  /** Revoke id → partitions, with the time it was sent. */
  readonly revoking = new Map<number, { partitions: PartitionKey[]; sentAt: number }>();
  stopRequestedAt: number | undefined;
  /** Why the supervisor killed it (hang, lost heartbeat...), or the worker's fatal message. */
  failure: string | undefined;
  memoryExceeded = false;
  /** Its heartbeat says the dead-letter threshold is reached (`failure.action: 'continue'`). */
  failing = false;
  /** It reported a stored offset beyond the log (`offsetReset: 'fail'`): its exit is no crash. */
  outOfRange = false;
  /** Killed by the supervisor for silence (a hang), which counts toward crash loops in a row. */
  hung = false;
  /** Sampled at each health check: a replica waiting for a CPU is not killed for silence. */
  readonly starvation: StarvationProbe;
  /** While starting: time it spent starved (not counted against the start timeout) and when it was last checked. */
  startStarvedMs = 0;
  startCheckedAt: number | undefined;
  readonly #spawn: ReplicaSpawn;
  #killed = false;

  constructor(spawn: ReplicaSpawn) {
    this.#spawn = spawn;
    this.seq = spawn.seq;
    this.replica = spawn.launch.replica;
    this.generation = spawn.generation;
    this.memoryMb = spawn.memoryMb;
    this.env = spawn.env;
    this.startedAt = spawn.clock();
    this.lastHeartbeatAt = this.startedAt;
    this.lastProgressAt = this.startedAt;
    this.child = fork(spawn.workerEntry, [], {
      execArgv: ['--import', TSX_LOADER, `--max-old-space-size=${spawn.memoryMb}`],
      env: replicaEnv(process.env, spawn.env, JSON.stringify(spawn.launch)),
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      serialization: 'json',
      // Its own process group: a terminal's Ctrl-C reaches only the supervisor, which drains the
      // replicas in order. A replica whose parent dies sees its IPC channel close and stops.
      detached: true,
    });
    // Best effort below the capture: lowered at once here (the main thread), the worker lowers its
    // other threads itself (see worker-main.ts). Raising it back would need privileges, so a failure
    // (no such process yet, a platform without it) only leaves the replica at normal priority.
    const niceness = spawn.launch.niceness ?? 0;
    if (niceness > 0 && this.child.pid !== undefined) {
      try {
        setPriority(this.child.pid, Math.min(19, getPriority(process.pid) + niceness));
      } catch {
        // see above
      }
    }
    this.starvation = new StarvationProbe(this.child.pid);
    this.#capture('stdout');
    this.#capture('stderr');
    this.child.on('message', (message) => {
      try {
        spawn.onMessage(this, message as WorkerToSupervisor);
      } catch (error) {
        this.note('error', `supervisor could not handle a message: ${(error as Error).message}`);
      }
    });
    // An IPC write to a process that just died reports here; the exit event follows.
    this.child.on('error', (error) => this.note('warn', `replica process error: ${error.message}`));
    this.child.on('exit', (code, signal) => {
      this.state = 'exited';
      this.owned.clear();
      this.revoking.clear();
      spawn.onExit(this, code, signal);
    });
  }

  /**
   * It loaded the consumer and describes it. One started before the consumer said its memory
   * limit or environment is replaced (stopped, no partition lost): false then.
   */
  ready(description: ConsumerDescription, now: number): boolean {
    this.description = description;
    this.lastHeartbeatAt = now;
    this.lastProgressAt = now;
    if (
      (description.memoryMb !== this.memoryMb || (description.env ?? []).join() !== this.env.join()) &&
      this.state === 'starting'
    ) {
      this.note(
        'info',
        `restarting with the consumer's memory limit (${description.memoryMb} MB) and environment (${(description.env ?? []).join(', ') || 'none declared'})`,
      );
      this.stop();
      return false;
    }
    if (this.state === 'starting') {
      this.state = 'ready';
      this.readyAt = now;
    }
    return true;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get alive(): boolean {
    return this.state !== 'exited';
  }

  /**
   * Sends the complete set of partitions the replica keeps from now on. Partitions being revoked
   * are left out: the worker handles messages in order, so an assignment listing one after its
   * revoke would take it back while the supervisor hands it to another replica.
   */
  assign(partitions: readonly PartitionKey[]): void {
    for (const p of partitions) this.owned.add(p);
    const keep = [...this.owned].filter((p) => !this.isRevoking(p));
    this.#send({ type: 'assign', partitions: keep.sort().map(parsePartitionKey) });
  }

  revoke(partitions: readonly PartitionKey[], id: number): void {
    this.revoking.set(id, { partitions: [...partitions], sentAt: this.#spawn.clock() });
    this.#send({ type: 'revoke', partitions: partitions.map(parsePartitionKey), id });
  }

  /** The revoke was answered: those partitions are free for another replica. */
  revoked(id: number): void {
    const pending = this.revoking.get(id);
    if (!pending) return;
    this.revoking.delete(id);
    for (const p of pending.partitions) this.owned.delete(p);
  }

  isRevoking(partition: PartitionKey): boolean {
    for (const { partitions } of this.revoking.values()) if (partitions.includes(partition)) return true;
    return false;
  }

  /** Asks for a drain and a clean exit. */
  stop(): void {
    if (this.stopRequestedAt !== undefined || !this.alive) return;
    this.stopRequestedAt = this.#spawn.clock();
    if (this.state === 'ready' || this.state === 'starting') this.state = 'stopping';
    if (!this.#send({ type: 'stop' })) this.kill('no IPC channel to ask it to stop');
  }

  kill(reason: string, options: { hung?: boolean } = {}): void {
    // Once killed, a health check before its exit event must not kill (and log) it again.
    if (!this.alive || this.#killed) return;
    this.#killed = true;
    if (options.hung && this.failure === undefined) this.hung = true;
    this.failure ??= reason;
    this.note('warn', `killing replica ${this.replica} (pid ${this.pid}): ${reason}`);
    this.child.kill('SIGKILL');
  }

  /** A line from the supervisor about this replica, in the consumer's log file. */
  note(level: 'info' | 'warn' | 'error', msg: string): void {
    const levels = { info: 30, warn: 40, error: 50 };
    this.#spawn.log.write({
      time: this.#spawn.clock(),
      level: levels[level],
      source: 'supervisor',
      replica: this.replica,
      pid: this.pid,
      msg,
    });
  }

  #send(message: SupervisorToWorker): boolean {
    if (!this.child.connected) return false;
    try {
      this.child.send(message, (error) => {
        if (error) this.note('warn', `could not send ${message.type}: ${error.message}`);
      });
      return true;
    } catch {
      return false;
    }
  }

  #capture(stream: 'stdout' | 'stderr'): void {
    const source = this.child[stream];
    if (!source) return;
    source.setEncoding('utf8');
    const splitter = new LineSplitter();
    const write = (line: string) => {
      // V8's message when the process dies on its old-space limit.
      if (stream === 'stderr' && line.includes('heap out of memory')) this.memoryExceeded = true;
      this.#spawn.log.write(
        structureLine(line, { replica: this.replica, pid: this.pid, stream }, this.#spawn.clock()),
      );
    };
    source.on('data', (chunk: string) => splitter.push(chunk, write));
    source.on('end', () => splitter.flush(write));
  }
}
