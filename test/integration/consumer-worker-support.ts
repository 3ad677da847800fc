/**
 * A minimal fake supervisor for the worker tests: forks the real worker entry over IPC and speaks
 * the protocol of `src/consumers/consumer-protocol.ts`. Not the real supervisor (tested elsewhere).
 */
import { type ChildProcess, fork } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type {
  TopicPartitionRef,
  WorkerLaunch,
  WorkerToSupervisor,
} from '../../src/consumers/consumer-protocol.ts';
import { WORKER_ENTRY } from '../../src/consumers/worker/worker-path.ts';
import type { AppendRecord } from '../../src/core/record.ts';
import { waitFor } from '../support/capture-harness.ts';

/** `--import tsx` resolves from the working directory (the repository when tests run). */
const TSX = 'tsx';
export const ENTRY_URL = new URL('../../src/index.ts', import.meta.url).href;
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface Totals {
  processed: number;
  failed: number;
  retried: number;
  deadLettered: number;
  handlerCalls: number;
  metrics: Record<string, number>;
}

export class FakeParent {
  readonly child: ChildProcess;
  readonly messages: WorkerToSupervisor[] = [];
  readonly totals: Totals = {
    processed: 0,
    failed: 0,
    retried: 0,
    deadLettered: 0,
    handlerCalls: 0,
    metrics: {},
  };
  stderr = '';
  stdout = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #revokeId = 0;

  constructor(launch: WorkerLaunch) {
    this.child = fork(WORKER_ENTRY, [], {
      execArgv: ['--import', TSX],
      env: { ...process.env, TRIBUTARY_WORKER: JSON.stringify(launch), TRIBUTARY_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    this.child.stdout!.on('data', (d) => {
      this.stdout += d;
    });
    this.child.stderr!.on('data', (d) => {
      this.stderr += d;
    });
    this.child.on('message', (m: WorkerToSupervisor) => {
      this.messages.push(m);
      if (m.type === 'heartbeat') {
        this.totals.processed += m.counters.processed;
        this.totals.failed += m.counters.failed;
        this.totals.retried += m.counters.retried;
        this.totals.deadLettered += m.counters.deadLettered;
        this.totals.handlerCalls += m.counters.durations.length;
        for (const [k, v] of Object.entries(m.metrics ?? {}))
          this.totals.metrics[k] = (this.totals.metrics[k] ?? 0) + v;
      }
    });
    this.exited = new Promise((resolve) =>
      this.child.on('exit', (code, signal) => resolve({ code, signal })),
    );
  }

  async ready(): Promise<Extract<WorkerToSupervisor, { type: 'ready' }>> {
    return waitFor(
      () => {
        const fatal = this.messages.find((m) => m.type === 'fatal');
        if (fatal) throw new Error(`worker fatal: ${fatal.message}`);
        return this.messages.find((m) => m.type === 'ready');
      },
      `ready from the worker\n${this.stderr}`,
      30_000,
    ) as Promise<Extract<WorkerToSupervisor, { type: 'ready' }>>;
  }

  assign(partitions: TopicPartitionRef[]): void {
    this.child.send({ type: 'assign', partitions });
  }

  async revoke(partitions: TopicPartitionRef[]): Promise<void> {
    const id = ++this.#revokeId;
    this.child.send({ type: 'revoke', partitions, id });
    await waitFor(() => this.messages.some((m) => m.type === 'revoked' && m.id === id), `revoked ${id}`);
  }

  async stop(): Promise<number | null> {
    if (this.child.exitCode === null && this.child.connected) this.child.send({ type: 'stop' });
    return (await this.exited).code;
  }

  async kill9(): Promise<void> {
    this.child.kill('SIGKILL');
    await this.exited;
  }
}

export function launch(name: string, module: string, dataDir: string, replica = 0): WorkerLaunch {
  return { name, module, dataDir, replica, heartbeatMs: 100 };
}

/** Writes `<dir>/<name>/index.ts` with the given body after the imports. */
export function writeConsumer(dir: string, name: string, body: string): string {
  const folder = join(dir, name);
  const file = join(folder, 'index.ts');
  mkdirSync(folder, { recursive: true });
  writeFileSync(
    file,
    `import { appendFileSync, existsSync } from 'node:fs';\nimport { defineConsumer, postgresTarget, sqliteTarget } from ${JSON.stringify(ENTRY_URL)};\nvoid appendFileSync; void existsSync; void postgresTarget; void sqliteTarget;\n${body}\n`,
  );
  return file;
}

/** `count` records over `keys` keys: key `{"id":k}`, value `{"id":k,"seq":n}` (n counts per key). */
export function keyedRecords(topic: string, count: number, keys: number, from = 0): AppendRecord[] {
  const out: AppendRecord[] = [];
  for (let i = from; i < from + count; i++) {
    const k = i % keys;
    const seq = Math.floor(i / keys);
    out.push({
      topic,
      key: JSON.stringify({ id: k }),
      value: JSON.stringify({ id: k, seq }),
      headers: {},
      timestamp: Date.now(),
    });
  }
  return out;
}
