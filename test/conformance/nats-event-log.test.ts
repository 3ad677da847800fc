import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTributaryError } from '../../src/core/errors.ts';
import type { EventLog } from '../../src/core/event-log.ts';
import type { AppendRecord } from '../../src/core/record.ts';
import { encodeRecords, RECORDS_CODEC } from '../../src/log/embedded/record-batch.ts';
import { NatsEventLog, type NatsEventLogOptions } from '../../src/log/nats/nats-event-log.ts';
import { recordHeaders } from '../../src/log/nats/nats-messages.ts';
import { LogNames } from '../../src/log/nats/nats-names.ts';
import { partitionForKey } from '../../src/log/partitioner.ts';
import { NatsCluster } from '../support/nats-cluster.ts';
import { eventLogConformance } from './event-log-conformance.ts';

let cluster: NatsCluster;
beforeAll(async () => {
  cluster = await NatsCluster.start();
}, 60_000);
afterAll(async () => {
  await cluster?.stop();
});

let logs = 0;
eventLogConformance('NATS JetStream (3 nodes, R3)', async () => {
  const name = `conf${++logs}`;
  const options: NatsEventLogOptions = {
    servers: cluster.urls,
    name,
    defaultPartitions: 4,
    stream: { replicas: 3 },
  };
  const opened: EventLog[] = [await NatsEventLog.open(options)];
  return {
    log: opened[0]!,
    reopen: async () => {
      opened.push(await NatsEventLog.open(options));
      return opened.at(-1)!;
    },
    cleanup: async () => {
      for (const log of opened) await log.close();
      const nc = await connect({ servers: [...cluster.urls] });
      const jsm = await jetstreamManager(nc);
      const names = new LogNames(name);
      await jsm.streams.delete(names.stream).catch(() => undefined);
      await jsm.streams.delete(`KV_${names.bucket}`).catch(() => undefined);
      await nc.close();
    },
  };
});

const rec = (topic: string, key: string | null, value: string, partition?: number): AppendRecord => ({
  topic,
  key,
  value,
  headers: {},
  timestamp: 1_000,
  ...(partition === undefined ? {} : { partition }),
});

describe('NatsEventLog', () => {
  const open = (name: string, extra: Partial<NatsEventLogOptions> = {}) =>
    NatsEventLog.open({
      servers: cluster.urls,
      name,
      defaultPartitions: 2,
      stream: { replicas: 3 },
      ...extra,
    });

  it('hides an unfinished append from readers, and the next writer appends after the last complete one', async () => {
    const log = await open('unfinished');
    await log.append([rec('u', null, 'a', 0), rec('u', null, 'b', 0)], { source: 's', position: '1' });
    await log.close();
    // A writer that died mid-append: its first message landed, its last one (sequence +2) never did.
    const nc = await connect({ servers: [...cluster.urls] });
    const names = new LogNames('unfinished');
    const jsm = await jetstreamManager(nc);
    const last = (await jsm.streams.info(names.stream)).state.last_seq;
    const batch = encodeRecords([rec('u', null, 'lost', 0)], [null], [0]);
    await jetstream(nc).publish(names.records('u', 0), batch.data, {
      headers: recordHeaders({ append: 'dead.1', commit: last + 2 }, 2, 1, 2, RECORDS_CODEC, batch.header),
      expect: { lastSequence: last },
    });
    const reader = await open('unfinished', { readonly: true });
    expect((await reader.read('u', 0, 0, 10)).map((r) => r.value)).toEqual(['a', 'b']);
    expect((await reader.topics())[0]!.partitions[0]).toEqual({ partition: 0, startOffset: 0, endOffset: 2 });
    expect(await reader.checkpoint('s')).toEqual({ source: 's', position: '1' });

    const writer = await open('unfinished');
    const stored = await writer.append([rec('u', null, 'c', 0)], { source: 's', position: '2' });
    expect(stored[0]!.offset).toBe(2);
    expect((await reader.read('u', 0, 0, 10)).map((r) => r.value)).toEqual(['a', 'b', 'c']);
    // The unfinished message stays in the stream, skipped.
    expect(await jsm.streams.getMessage(names.stream, { seq: last + 1 })).not.toBeNull();
    expect((await reader.read('u', 0, 2, 10)).map((r) => r.value)).toEqual(['c']);
    await Promise.all([writer.close(), reader.close(), nc.close()]);
  });

  it('reports records and bytes per topic, bytes shared out by messages, to a reader too', async () => {
    const writer = await open('stats');
    for (let i = 0; i < 6; i++) {
      await writer.append(Array.from({ length: 50 }, (_, j) => rec('big', `k${i}-${j}`, 'x'.repeat(400))));
    }
    await writer.append([rec('small', 'a', 'y'), rec('small', 'b', 'y')]);
    const reader = await open('stats', { readonly: true });
    // Asked synchronously, as the status page does: nothing yet, the figures come with a refresh.
    expect(reader.topicStats()).toEqual([]);
    const stats = await reader.refreshTopicStats();
    expect(reader.topicStats()).toBe(stats);
    const big = stats.find((t) => t.topic === 'big')!;
    const small = stats.find((t) => t.topic === 'small')!;
    expect([big.records, small.records]).toEqual([300, 2]);
    expect(small.bytes).toBeGreaterThan(0);
    expect(big.bytes).toBeGreaterThan(small.bytes);
    await Promise.all([writer.close(), reader.close()]);
  });

  it('fences a writer whose place in the stream another writer took', async () => {
    const first = await open('fenced');
    await first.append([rec('f', 'k', '1')]);
    const second = await open('fenced');
    await second.append([rec('f', 'k', '2')]);
    const error = await first.append([rec('f', 'k', '3')]).catch((e: unknown) => e);
    expect(isTributaryError(error) && error.code).toBe('LOG_FENCED');
    const reader = await open('fenced', { readonly: true });
    const values = (await reader.read('f', partitionForKey('k', 2), 0, 10)).map((r) => r.value);
    expect(values).toEqual(['1', '2']);
    await Promise.all([first.close(), second.close(), reader.close()]);
  });

  it('stores row batches: as records across several messages when larger than one, whole when small', async () => {
    const log = await open('batches', { defaultPartitions: 1 });
    const many = Array.from({ length: 3_000 }, (_, i) => rec('one', `k${i}`, `v${i}`.padEnd(600, '.')));
    const blob = encodeRecords(
      many,
      many.map(() => null),
      many.map((_, i) => i),
    );
    const batch = {
      kind: 'batch' as const,
      topic: 'one',
      count: many.length,
      timestamp: 1_000,
      codec: RECORDS_CODEC,
      header: blob.header,
      data: blob.data,
    };
    // 3,000 records of ~600 bytes exceed one message (1 MB): the batch is stored as records, in several messages.
    expect(await log.append([rec('one', null, 'first'), batch, rec('one', null, 'last')])).toHaveLength(
      3_002,
    );
    const all = [];
    for (let offset = 0; ; ) {
      const page = await log.read('one', 0, offset, 700);
      if (page.length === 0) break;
      all.push(...page);
      offset += page.length;
    }
    expect(all.map((r) => r.value)).toEqual(['first', ...many.map((r) => r.value), 'last']);
    expect(all.map((r) => r.offset)).toEqual(all.map((_, i) => i));
    // A small batch on a one-partition topic is kept whole (it returns no records) and read back rendered.
    const small = encodeRecords(many.slice(0, 5), [null, null, null, null, null], [0, 1, 2, 3, 4]);
    expect(await log.append([{ ...batch, count: 5, header: small.header, data: small.data }])).toEqual([]);
    expect((await log.read('one', 0, 3_002, 10)).map((r) => r.key)).toEqual(['k0', 'k1', 'k2', 'k3', 'k4']);
    await log.close();
  });
});
