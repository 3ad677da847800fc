import { type CaptureStatus, readStatus } from '../../src/capture/capture-status.ts';
import { NatsEventLog } from '../../src/log/nats/nats-event-log.ts';
import { readTopic, readTopicTail, waitFor } from './capture-harness.ts';
import { type CliProcess, startCli } from './cli.ts';
import type { TestDatabase } from './databases.ts';
import type { NatsCluster } from './nats-cluster.ts';

/**
 * `run` processes of one pipeline (one database with the audited tables, one slot, one NATS log,
 * all named `name`) for the active/standby tests: start them, watch the slot, count and read the log.
 */
export class StandbyPipeline {
  readonly topic: string;
  readonly processes: CliProcess[] = [];

  constructor(
    private readonly db: TestDatabase,
    private readonly cluster: NatsCluster,
    readonly name: string,
  ) {
    this.topic = `${name}.public.accounts`;
  }

  start(dataDir: string, extra: string[] = [], moreEnv: Record<string, string> = {}): CliProcess {
    const args = ['run', '--source', this.db.url, '--data-dir', dataDir, '--log', this.cluster.url];
    args.push('--partitions', '3', '--tables', 'public.accounts', '--slot', this.name);
    args.push('--topic-prefix', this.name, '--snapshot-mode', 'never', '--log-level', 'info');
    if (!extra.includes('--http-port')) args.push('--http-port', '0');
    const env = { TRIBUTARY_MAX_BATCH_RECORDS: '300', TRIBUTARY_NATS_LOG_NAME: this.name, ...moreEnv };
    const p = startCli([...args, ...extra], { env });
    this.processes.push(p);
    return p;
  }

  /** The pid (on the server) of the walsender holding the slot; undefined while none does. */
  async slotPid(): Promise<number | undefined> {
    const result = await this.db.query<{ active_pid: number | null }>(
      'select active_pid from pg_replication_slots where slot_name = $1',
      [this.name],
    );
    return result.rows[0]?.active_pid ?? undefined;
  }

  status(dataDir: string): CaptureStatus | null {
    return readStatus(dataDir);
  }

  openReader(): Promise<NatsEventLog> {
    return NatsEventLog.open({ servers: this.cluster.urls, name: this.name, readonly: true });
  }

  async count(): Promise<number> {
    const log = await this.openReader();
    try {
      const info = (await log.topics()).find((t) => t.topic === this.topic);
      return info?.partitions.reduce((n, p) => n + p.endOffset, 0) ?? 0;
    } finally {
      await log.close();
    }
  }

  /** Commits one more audited row and waits until the log has it: everything before is captured. */
  async captureMarker(): Promise<void> {
    const marker = await this.db.query<{ id: string }>(
      `with i as (insert into accounts (version, payload) values (1, 'marker') returning id, version)
       insert into audit (key, version, op) select id, version, 'c' from i returning key as id`,
    );
    const key = `{"id":${marker.rows[0]!.id}}`;
    await waitFor(
      async () => {
        const log = await this.openReader();
        try {
          return (await readTopicTail(log, this.topic, 20)).some((r) => r.key === key);
        } finally {
          await log.close();
        }
      },
      'the marker to be captured',
      40_000,
    );
  }

  async records() {
    const log = await this.openReader();
    try {
      return {
        records: await readTopic(log, this.topic),
        term: (await log.leadership(`postgres:${this.name}`))?.term,
      };
    } finally {
      await log.close();
    }
  }

  async kill(): Promise<void> {
    for (const p of this.processes) p.child.kill('SIGKILL');
    await Promise.all(this.processes.map((p) => p.exited));
  }
}
