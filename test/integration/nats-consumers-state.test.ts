import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { freePort } from '../../src/cli/free-port.ts';
import { groupKeys, parsePartitionEntry } from '../../src/consumers/nats/group-keys.ts';
import { NatsConsumerState } from '../../src/consumers/nats/nats-consumer-state.ts';
import type { StoredRecord } from '../../src/core/record.ts';
import { NatsEventLog } from '../../src/log/nats/nats-event-log.ts';
import { NatsLogBucket } from '../../src/log/nats/nats-log-bucket.ts';
import { quietLogger, tempDirs, waitFor } from '../support/capture-harness.ts';
import { cli, startCli } from '../support/cli.ts';
import { natsSuite } from '../support/nats-suite.ts';
import { keyedRecords, writeConsumer } from './consumer-worker-support.ts';

const dirs = tempDirs('nats-state-');
const TOPIC = 'dl.events';

describe('consumer state in the NATS log', () => {
  const nats = natsSuite(dirs);

  it('fences commits: a former owner cannot move the offset once another member took the partition', async () => {
    const log = await NatsEventLog.open({ servers: nats.cluster.urls, name: 'natsfence' });
    const bucket = await NatsLogBucket.open({ url: nats.cluster.url, name: 'natsfence' });
    try {
      const key = groupKeys.offset('g', 't', 0);
      const first = new NatsConsumerState(bucket.kv, { member: 'm1', logger: quietLogger });
      const second = new NatsConsumerState(bucket.kv, { member: 'm2', logger: quietLogger });
      const offset = async () => parsePartitionEntry((await bucket.kv.get(key))!.string()).offset;
      // Nobody owns it yet: nobody commits.
      await first.commit('g', [{ topic: 't', partition: 0, offset: 5 }]);
      expect(await bucket.kv.get(key)).toBeNull();
      await bucket.kv.create(key, JSON.stringify({ offset: 0, owner: 'm1' }));
      await first.commit('g', [{ topic: 't', partition: 0, offset: 10 }]);
      expect(await offset()).toBe(10);
      // m2 takes over (compare-and-set on the revision m2 read).
      const taken = (await bucket.kv.get(key))!;
      await bucket.kv.update(key, JSON.stringify({ offset: 10, owner: 'm2' }), taken.revision);
      await first.commit('g', [{ topic: 't', partition: 0, offset: 20 }]);
      expect(await offset()).toBe(10);
      await second.commit('g', [{ topic: 't', partition: 0, offset: 15 }]);
      await second.commit('g', [{ topic: 't', partition: 0, offset: 12 }]);
      expect(await offset()).toBe(15);
      await second.commit('g', [{ topic: 't', partition: 0, offset: 3 }], { force: true });
      expect(await offset()).toBe(3);
      expect(await second.committed('g')).toEqual([{ topic: 't', partition: 0, offset: 3 }]);
      expect(await log.committed('g')).toEqual([{ topic: 't', partition: 0, offset: 3 }]);

      // A dead letter is stored once per record, whoever writes it.
      const record: StoredRecord = {
        topic: 't',
        partition: 0,
        offset: 7,
        key: '1',
        value: '2',
        headers: {},
        timestamp: 1,
      };
      const letter = {
        consumer: 'c',
        group: 'g',
        record,
        error: 'boom',
        stack: undefined,
        attempts: 3,
        firstFailedAt: 1,
        failedAt: 2,
      };
      expect(await first.addDeadLetter(letter)).toBeGreaterThan(0);
      expect(await second.addDeadLetter(letter)).toBeUndefined();
      expect(await second.deadLetteredOffsets('g', 't', 0, 0)).toEqual(new Set([7]));
      expect(await second.deadLetteredOffsets('g', 't', 0, 8)).toEqual(new Set());
    } finally {
      await bucket.close();
      await log.close();
    }
  }, 60_000);

  it('non-transactional: every record handled at least once in per-key order across kill -9, dead letters in NATS for dlq list', async () => {
    const env = { TRIBUTARY_NATS_LOG_NAME: 'natsdlq', TRIBUTARY_DATA_DIR: '', TRIBUTARY_CONSUMERS_DIR: '' };
    const log = await NatsEventLog.open({
      servers: nats.cluster.urls,
      name: 'natsdlq',
      defaultPartitions: 4,
    });
    const consumersDir = dirs.make();
    const handledFile = join(dirs.make(), 'handled.jsonl');
    // Records of keys 7, 32, 57, 82 with seq 3 always fail: they must end as dead letters.
    const bad = (id: number, seq: number) => id % 25 === 7 && seq === 3;
    writeConsumer(
      consumersDir,
      'tally',
      `export default defineConsumer({
  topics: [${JSON.stringify(TOPIC)}],
  batch: { maxRecords: 25 },
  concurrency: 3,
  retry: { attempts: 2, initialDelayMs: 5, maxDelayMs: 10 },
  async handle(batch) {
    if (batch.some((r) => r.value.id % 25 === 7 && r.value.seq === 3)) throw new Error('refused');
    appendFileSync(${JSON.stringify(handledFile)}, batch.map((r) => JSON.stringify({ p: r.partition, o: r.offset, id: r.value.id, seq: r.value.seq, pid: process.pid, t: Date.now() })).join('\\n') + '\\n');
  },
});`,
    );
    const runArgs = () => [
      ...['consumers', 'run', 'tally', '--log', nats.cluster.url, '--consumers-dir', consumersDir],
      ...['--data-dir', dirs.make(), '--replicas', '2', '--lease-ms', '2000'],
    ];
    const metricsPort = await freePort();
    const a = startCli(runArgs(), { env });
    const b = startCli([...runArgs(), '--metrics-port', String(metricsPort)], { env });
    nats.procs.push(a, b);
    const handled = () => {
      try {
        return readFileSync(handledFile, 'utf8')
          .split('\n')
          .filter((l) => l !== '')
          .map((l) => JSON.parse(l) as { p: number; o: number; id: number; seq: number });
      } catch {
        return [];
      }
    };
    const total = 4000;
    const keys = 100;
    for (let i = 0; i < total; i += 200) {
      await log.append(keyedRecords(TOPIC, 200, keys, i));
      if (i === 1000) await waitFor(() => handled().length > 500, 'records handled');
      if (i === 1400) {
        a.child.kill('SIGKILL');
        // Its replicas lose their parent and stop (draining); the partitions go to B once A's lease ends.
      }
    }
    const failing = keyedRecords(TOPIC, total, keys).filter((r) => {
      const v = JSON.parse(r.value!) as { id: number; seq: number };
      return bad(v.id, v.seq);
    }).length;
    expect(failing).toBe(4);
    const diagnostics = () => `\n--- B\n${b.stderr.slice(-3000)}`;
    await waitFor(
      () => new Set(handled().map((r) => `${r.p}/${r.o}`)).size === total - failing,
      'every record but the failing ones handled',
      90_000,
    ).catch((error: Error) => {
      throw new Error(
        `${error.message}: ${new Set(handled().map((r) => `${r.p}/${r.o}`)).size}${diagnostics()}`,
      );
    });
    // Per key, the first time each seq is handled it is the next one (duplicates are replays).
    const rows = handled();
    const problems: string[] = [];
    const seen = new Map<number, Set<number>>();
    const next = new Map<number, number>();
    for (const r of rows) {
      const s = seen.get(r.id) ?? new Set();
      seen.set(r.id, s);
      if (s.has(r.seq)) continue;
      let expected = next.get(r.id) ?? 0;
      if (bad(r.id, expected)) expected++;
      if (r.seq !== expected)
        problems.push(`key ${r.id}: seq ${r.seq} first handled when ${expected} was next`);
      s.add(r.seq);
      next.set(r.id, r.seq + 1);
    }
    expect(problems).toEqual([]);
    console.log(
      `non-transactional: ${rows.length} handlings of ${total - failing} records (${rows.length - (total - failing)} replays after the kill)`,
    );

    // The dead letters are in NATS, one per failing record, seen by any process.
    const list = await cli(['dlq', 'list', 'tally', '--log', nats.cluster.url, '--status', 'all', '--json'], {
      env,
    });
    expect(list.code, list.stderr).toBe(0);
    const letters = JSON.parse(list.stdout) as { id: number; status: string; value: string; error: string }[];
    expect(letters.length).toBe(failing);
    for (const l of letters) {
      const v = JSON.parse(l.value) as { id: number; seq: number };
      expect(bad(v.id, v.seq)).toBe(true);
      expect(l.status).toBe('pending');
      expect(l.error).toContain('refused');
    }
    const text = await cli(['dlq', 'list', 'tally', '--log', nats.cluster.url], { env });
    expect(text.stdout).toContain(`1-${failing} of ${failing}`);
    // Offsets committed in NATS reach the end of every partition.
    await waitFor(
      async () =>
        (await log.lag('tally')).every((p) => p.records === 0) && (await log.lag('tally')).length === 4,
      'no lag',
    );
    // B's metrics: the records its replicas handled, its replicas, the group's lag.
    const metric = (text: string, name: string) =>
      Number(new RegExp(`^${name}\\{consumer="tally"\\} (\\S+)$`, 'm').exec(text)?.[1]);
    let metrics = '';
    await waitFor(async () => {
      metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      return (
        metric(metrics, 'tributary_consumer_records_processed_total') > 0 &&
        metric(metrics, 'tributary_consumer_replicas') === 2 &&
        metric(metrics, 'tributary_consumer_lag_records') === 0
      );
    }, 'metrics of B').catch((error: Error) => {
      const lines = metrics.split('\n').filter((l) => l.includes('consumer="tally"'));
      throw new Error(`${error.message}:\n${lines.join('\n')}${diagnostics()}`);
    });
    b.child.kill('SIGTERM');
    const exit = await b.exited;
    expect(exit.code, exit.stderr.slice(-2000)).toBe(0);
    await log.close();
  }, 180_000);
});
