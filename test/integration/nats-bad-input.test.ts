import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/cli/free-port.ts';
import { isTributaryError, type TributaryError } from '../../src/core/errors.ts';
import type { AppendRecord } from '../../src/core/record.ts';
import { NatsEventLog } from '../../src/log/nats/nats-event-log.ts';
import { LogNames } from '../../src/log/nats/nats-names.ts';
import { readTopic, waitFor } from '../support/capture-harness.ts';
import { cli } from '../support/cli.ts';
import { NatsCluster } from '../support/nats-cluster.ts';

const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => {
      throw new Error('expected a failure');
    },
    (error: unknown) => {
      expect(isTributaryError(error), String(error)).toBe(true);
      return error as TributaryError;
    },
  );

const record = (topic: string, key: string, value: string): AppendRecord => ({
  topic,
  key,
  value,
  headers: {},
  timestamp: 1_700_000_000_000,
});

describe('NATS log: bad input and lost quorum', () => {
  let cluster: NatsCluster;
  beforeAll(async () => {
    cluster = await NatsCluster.start();
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  it('names an unreachable server, in the API and in the CLI (exit code and fix)', async () => {
    const port = await freePort();
    const error = await failure(
      NatsEventLog.open({ servers: [`nats://127.0.0.1:${port}`], connectTimeoutMs: 1_000 }),
    );
    expect(error.code).toBe('LOG_UNAVAILABLE');
    expect(error.message).toContain(`127.0.0.1:${port}`);
    const result = await cli(['topics', '--log', `nats://127.0.0.1:${port}`]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(`127.0.0.1:${port}`);
    expect(result.stderr).toContain('fix:');
  });

  it('refuses a server without JetStream, and R3 on a single server, saying what to change', async () => {
    const plain = await NatsCluster.start({ nodes: 1, jetstream: false });
    const single = await NatsCluster.start({ nodes: 1 });
    try {
      const noJs = await failure(NatsEventLog.open({ servers: plain.urls }));
      expect(noJs.code).toBe('LOG_NO_JETSTREAM');
      expect(noJs.hint).toContain('-js');
      const r3 = await failure(NatsEventLog.open({ servers: single.urls, stream: { replicas: 3 } }));
      expect(r3.code).toBe('LOG_CONFIG_CONFLICT');
      expect(r3.hint).toContain('log.nats.replicas=3');
      const r1 = await NatsEventLog.open({ servers: single.urls, stream: { replicas: 1 } });
      expect((await r1.append([record('t', 'k', 'v')]))[0]!.offset).toBe(0);
      await r1.close();
    } finally {
      await Promise.all([plain.stop(), single.stop()]);
    }
  }, 60_000);

  it('refuses a stream whose settings conflict with the configured ones, naming both', async () => {
    const nc = await connect({ servers: [...cluster.urls] });
    const names = new LogNames('conflict');
    try {
      const jsm = await jetstreamManager(nc);
      await jsm.streams.add({
        name: names.stream,
        subjects: [names.subjects],
        num_replicas: 1,
        storage: 'memory' as never,
      });
      const error = await failure(
        NatsEventLog.open({
          servers: cluster.urls,
          name: 'conflict',
          stream: { replicas: 3, storage: 'file' },
        }),
      );
      expect(error.code).toBe('LOG_CONFIG_CONFLICT');
      expect(error.message).toContain('replicas 1 (configured 3)');
      expect(error.message).toContain('storage memory (configured file)');
      expect(error.hint).toContain(`nats stream edit ${names.stream}`);
      // Nothing was changed: the stream keeps its settings.
      expect((await jsm.streams.info(names.stream)).config.num_replicas).toBe(1);
    } finally {
      await nc.close();
    }
  });

  it('pauses an append while the cluster has no quorum and completes it, once, when quorum returns', async () => {
    const retries: unknown[] = [];
    const log = await NatsEventLog.open({
      servers: cluster.urls,
      name: 'quorum',
      defaultPartitions: 2,
      stream: { replicas: 3 },
      onRetry: (error) => retries.push(error),
    });
    try {
      await log.append([record('q', 'a', '1'), record('q', 'b', '2')], { source: 's', position: '1' });
      await cluster.kill(0);
      await cluster.kill(1);
      let settled = false;
      const pending = log
        .append([record('q', 'a', '3'), record('q', 'b', '4')], { source: 's', position: '2' })
        .finally(() => {
          settled = true;
        });
      await waitFor(() => retries.length >= 2, 'the append to retry', 30_000);
      expect(settled).toBe(false);
      await cluster.startNode(0);
      await cluster.startNode(1);
      await pending;
      expect(retries.length).toBeGreaterThanOrEqual(2);
      const reader = await NatsEventLog.open({ servers: cluster.urls, name: 'quorum', readonly: true });
      const values = (await readTopic(reader, 'q')).map((r) => `${r.key}${r.value}`).sort();
      expect(values).toEqual(['a1', 'a3', 'b2', 'b4']);
      expect(await reader.checkpoint('s')).toEqual({ source: 's', position: '2' });
      await reader.close();
    } finally {
      await log.close();
      await cluster.startNode(0);
      await cluster.startNode(1);
    }
  }, 100_000);
});
