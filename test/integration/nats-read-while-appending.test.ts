import { expect, it } from 'vitest';
import { NatsEventLog } from '../../src/log/nats/nats-event-log.ts';
import { NatsCluster } from '../support/nats-cluster.ts';
import { keyedRecords } from './consumer-worker-support.ts';

/**
 * A reader following partitions while the writer appends must get every offset in order: each
 * read starts at the offset asked for. (The reader took an append whose commit message was stored
 * between its two questions for abandoned, skipped it and returned the next one: a hole, seen as
 * "asked 350, got 420" here and as records never handled by `consumers run` replicas.)
 */
it('NATS log: reads while appending return every offset, no hole', async () => {
  const cluster = await NatsCluster.start();
  try {
    const writer = await NatsEventLog.open({ servers: cluster.urls, name: 'holes', defaultPartitions: 4 });
    const reader = await NatsEventLog.open({ servers: cluster.urls, name: 'holes', readonly: true });
    let done = false;
    const appending = (async () => {
      for (let i = 0; i < 4000; i += 200) await writer.append(keyedRecords('h.t', 200, 100, i));
      done = true;
    })();
    const problems: string[] = [];
    const ends = await Promise.all(
      [0, 1, 2, 3].map(async (p) => {
        let next = 0;
        for (;;) {
          const finished = done;
          const got = await reader.read('h.t', p, next, 1000);
          if (got.length > 0 && got[0]!.offset !== next)
            problems.push(`p${p}: asked ${next}, got ${got[0]!.offset}`);
          if (got.length > 0) next = got[got.length - 1]!.offset + 1;
          else if (finished) return next;
          else await new Promise((resolve) => setTimeout(resolve, 3));
        }
      }),
    );
    await appending;
    expect(problems).toEqual([]);
    expect(ends.reduce((n, e) => n + e, 0)).toBe(4000);
    await reader.close();
    await writer.close();
  } finally {
    await cluster.stop();
  }
}, 120_000);
