import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { expect, it } from 'vitest';
import { listEntries, listKeys } from '../../src/log/nats/nats-kv-keys.ts';
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

/**
 * A listing is a snapshot of the bucket: it ends while writers keep rewriting its keys, and its
 * entries leave out deleted keys. (`KV.keys()` delivered until nothing was pending: under steady commits and
 * heartbeats a group's offsets or members took tens of seconds to list, and `lag` with them.)
 */
it('lists the live keys of a bucket at once while several writers keep rewriting them', async () => {
  const cluster = await NatsCluster.start();
  const nc = await connect({ servers: [...cluster.urls] });
  try {
    const kv = await new Kvm(nc).create('busy', { history: 1, replicas: 3 });
    const all = Array.from({ length: 50 }, (_, i) => `o.g.t.${i}`);
    for (const key of all) await kv.put(key, '0');
    await kv.put('o.g.t.gone', '0');
    await kv.delete('o.g.t.gone');
    let stop = false;
    let writes = 0;
    const writers = Array.from({ length: 6 }, async (_, w) => {
      for (let i = w; !stop; i += 6) {
        await kv.put(all[i % all.length]!, String(i));
        writes++;
      }
    });
    try {
      const before = writes;
      for (let run = 0; run < 5; run++) {
        expect((await listEntries(kv, 'o.g.>')).map((e) => e.key)).toEqual([...all].sort());
        // The keys alone, unread: the deleted one too (its marker is its last message).
        expect(await listKeys(kv, 'o.g.>')).toEqual([...all, 'o.g.t.gone'].sort());
      }
      // The writers were busy all along (the listings did not wait for a quiet moment).
      expect(writes - before).toBeGreaterThan(50);
    } finally {
      stop = true;
      await Promise.all(writers);
    }
  } finally {
    await nc.close();
    await cluster.stop();
  }
}, 60_000);
