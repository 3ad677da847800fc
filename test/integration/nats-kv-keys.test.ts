import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { expect, it } from 'vitest';
import { listKeys } from '../../src/log/nats/nats-kv-keys.ts';
import { NatsCluster } from '../support/nats-cluster.ts';

/**
 * Listing the keys of a bucket while they are rewritten (members' heartbeats every 500 ms) gives
 * each key once. (`KV.keys()` repeated rewritten keys: `consumers pause` counted "3 of 3 replicas"
 * for two, and a dead letter could be listed twice.)
 */
it('lists each key of a NATS KV bucket once while a writer rewrites them', async () => {
  const cluster = await NatsCluster.start();
  const nc = await connect({ servers: [...cluster.urls] });
  try {
    const kv = await new Kvm(nc).create('keys', { history: 1, replicas: 3 });
    const all = Array.from({ length: 200 }, (_, i) => `m.g.k${i}`);
    for (const key of all) await kv.put(key, 'x');
    let stop = false;
    const writer = (async () => {
      for (let i = 0; !stop; i++) await kv.put(all[i % all.length]!, String(i));
    })();
    const repeated: string[][] = [];
    for (let run = 0; run < 30; run++) {
      const keys = await listKeys(kv, 'm.>');
      if (keys.length !== all.length) repeated.push(keys);
    }
    stop = true;
    await writer;
    expect(repeated).toEqual([]);
    expect((await listKeys(kv, 'm.>')).sort()).toEqual([...all].sort());
  } finally {
    await nc.close();
    await cluster.stop();
  }
}, 60_000);
