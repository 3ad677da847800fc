import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NatsCluster } from './nats-cluster.ts';

describe('NatsCluster (test fixture)', () => {
  let cluster: NatsCluster;
  beforeAll(async () => {
    cluster = await NatsCluster.start();
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  it('runs three JetStream nodes whose R3 stream keeps its messages across kill -9 of its leader', async () => {
    const nc = await connect({ servers: [...cluster.urls], maxReconnectAttempts: -1 });
    try {
      const jsm = await jetstreamManager(nc);
      await jsm.streams.add({ name: 'FIXTURE', subjects: ['fixture.>'], num_replicas: 3 });
      const js = jetstream(nc);
      for (let i = 0; i < 10; i++) await js.publish('fixture.a', `${i}`);
      const info = await jsm.streams.info('FIXTURE');
      expect(info.cluster?.replicas?.length).toBe(2);
      const leader = cluster.indexOf(info.cluster!.leader!);
      await cluster.kill(leader);
      expect(cluster.isRunning(leader)).toBe(false);
      let after = await jsm.streams.info('FIXTURE').catch(() => undefined);
      const deadline = Date.now() + 30_000;
      while (after?.cluster?.leader === undefined || after.cluster.leader === info.cluster!.leader) {
        if (Date.now() > deadline) throw new Error('no new stream leader within 30 s');
        await new Promise((r) => setTimeout(r, 200));
        after = await jsm.streams.info('FIXTURE').catch(() => undefined);
      }
      expect(after.state.messages).toBe(10);
      await cluster.startNode(leader);
      await cluster.waitHealthy();
      expect(cluster.isRunning(leader)).toBe(true);
    } finally {
      await nc.close();
    }
  }, 90_000);
});
