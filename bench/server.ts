/**
 * The control plane's cost (issue 5):
 *
 * 1. Capture throughput with and without the HTTP server and its metrics: `tributary run`
 *    catches up the same WAL (pgbench transactions, as workload B of `npm run bench`) from slots
 *    created together, alternately with `--http-port 0` (no server) and with the server while a
 *    scraper reads /metrics every second (a Prometheus scraping 15× more often than usual).
 * 2. /metrics scrape time with 50 topics (3 partitions each) and 20 consumers' series.
 *
 *   npx tsx bench/server.ts [--txs 100000] [--rounds 2] [--pg 15|18] [--scrapes 200]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { freePort } from '../src/cli/free-port.ts';
import { ConsumerMetrics } from '../src/consumers/consumer-metrics.ts';
import type { Relation } from '../src/core/change-event.ts';
import { EmbeddedEventLog } from '../src/log/embedded/sqlite-event-log.ts';
import type { CaptureControl } from '../src/server/control-plane-deps.ts';
import { startControlPlane } from '../src/server/http-server.ts';
import { ServerMetrics } from '../src/server/server-metrics.ts';
import { startCluster } from '../test/support/pg-cluster.ts';
import { type CatchUpTarget, runOurs } from './capture/contenders.ts';
import { createSlots, dropSlots, generateWal, prepareWorkload } from './capture/workloads.ts';

const { values } = parseArgs({
  options: {
    txs: { type: 'string', default: '100000' },
    rounds: { type: 'string', default: '2' },
    pg: { type: 'string', default: '15' },
    scrapes: { type: 'string', default: '200' },
  },
});
const txs = Number(values.txs);
const rounds = Number(values.rounds);
const scrapes = Number(values.scrapes);

console.log(
  `Machine: ${cpus().length} CPUs, load average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
await throughput();
await scrapeTime();

async function throughput(): Promise<void> {
  const cluster = await startCluster({ version: Number(values.pg) });
  try {
    const workload = await prepareWorkload(cluster.url(), 'B', { rows: 1, txs });
    const runs = Array.from({ length: rounds }, (_, i) => [`bench_srv_off_${i}`, `bench_srv_on_${i}`]).flat();
    const slotLsns = await createSlots(workload, runs);
    const wal = await generateWal(workload, { rows: 1, txs }, slotLsns);
    console.log(
      `\nCapture catch-up: ${workload.description}, ${(wal.walBytes / 2 ** 20).toFixed(0)} MiB of WAL, PostgreSQL ${values.pg}`,
    );
    const results: { server: boolean; seconds: number; rss: number | null; scrapes: number }[] = [];
    for (const slot of runs) {
      const server = slot.includes('_on_');
      const target: CatchUpTarget = {
        url: workload.url,
        slot,
        publication: workload.publication,
        endLsn: wal.endLsn,
        tables: workload.tables,
        expectedChanges: workload.changes + 1,
        timeoutMs: 20 * 60_000,
      };
      const port = server ? await freePort() : 0;
      let scraped = 0;
      let scraping = server;
      const scraper = (async () => {
        while (scraping) {
          await new Promise((r) => setTimeout(r, 1000));
          const response = await fetch(`http://127.0.0.1:${port}/metrics`).catch(() => null);
          if (response?.ok) {
            await response.text();
            scraped++;
          }
        }
      })();
      const result = await runOurs(target, { env: { TRIBUTARY_HTTP_PORT: String(port) } }).finally(() => {
        scraping = false;
      });
      await scraper;
      results.push({
        server,
        seconds: result.wallSeconds,
        rss: result.peakRssBytes === null ? null : result.peakRssBytes / 2 ** 20,
        scrapes: scraped,
      });
      console.log(
        `  ${server ? 'with server + scrapes' : 'without server     '}  ${result.wallSeconds.toFixed(2)} s  ${Math.round(workload.changes / result.wallSeconds).toLocaleString('en')} changes/s  peak RSS ${results.at(-1)!.rss?.toFixed(0)} MB${server ? `  (${scraped} scrapes)` : ''}`,
      );
    }
    await dropSlots(workload, runs);
    const mean = (on: boolean) => {
      const r = results.filter((x) => x.server === on);
      return r.reduce((n, x) => n + x.seconds, 0) / r.length;
    };
    const off = mean(false);
    const on = mean(true);
    console.log(
      `  mean: without ${off.toFixed(2)} s, with ${on.toFixed(2)} s: overhead ${(((on - off) / off) * 100).toFixed(1)}%`,
    );
  } finally {
    await cluster.stop();
  }
}

async function scrapeTime(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-server-'));
  const log = EmbeddedEventLog.open({ dataDir: dir, defaultPartitions: 3, durable: false });
  try {
    // 50 topics, 3 partitions each, a few records in each partition.
    const records = [];
    for (let t = 0; t < 50; t++) {
      for (let k = 0; k < 30; k++) {
        records.push({
          topic: `shop.public.table_${t}`,
          key: JSON.stringify({ id: k }),
          value: JSON.stringify({ op: 'c', after: { id: k } }),
          headers: {},
          timestamp: Date.now(),
        });
      }
    }
    await log.append(records);
    // The capture's counters for 50 tables × 4 operations.
    const eventsByTable = new Map<Relation, Record<string, number>>();
    for (let t = 0; t < 50; t++) {
      const relation = { id: t + 1, schema: 'public', table: `table_${t}` } as Relation;
      eventsByTable.set(relation, { c: 1000 + t, u: 500, d: 20, t: 1 });
    }
    const capture = {
      capture: {
        eventsByTable,
        stats: { transactions: 1, events: 1, records: 1, appends: 1, lastCommitTimeUs: 1n, durableLsn: 1n },
      },
      source: { stats: { connected: true, reconnects: 0, bytesReceived: 1, confirmedLsn: 1n } },
      slotState: () => ({
        serverLsn: 1n,
        confirmedFlushLsn: 1n,
        lagBytes: 0,
        retainedBytes: 0,
        walStatus: null,
        active: true,
      }),
      slot: 'bench',
      publication: 'bench',
      target: 'bench',
    } as unknown as CaptureControl;
    // 20 consumers, each with every consumer series (the handler histogram included).
    const consumers = new ConsumerMetrics();
    for (let c = 0; c < 20; c++) {
      const name = `consumer_${c}`;
      consumers.addCounters(name, {
        processed: 100,
        failed: 1,
        retried: 1,
        deadLettered: 1,
        durations: [0.002, 0.2],
      });
      consumers.setLag(name, 10, 1);
      consumers.setReplicas(name, 2, 1);
      consumers.restarted(name);
    }
    const metrics = new ServerMetrics();
    const server = await startControlPlane({
      host: '127.0.0.1',
      port: 0,
      logger: pino({ level: 'silent' }),
      metrics,
      deps: {
        log,
        capture,
        supervisor: {
          registry: consumers.registry,
          list: async () => [],
          scale: async () => false,
          pause: async () => false,
          resume: async () => false,
          restart: async () => false,
        },
      },
    });
    server.attach({});
    try {
      const times: number[] = [];
      let text = '';
      for (let i = 0; i < scrapes + 10; i++) {
        const started = performance.now();
        text = await (await fetch(`${server.url}metrics`)).text();
        if (i >= 10) times.push(performance.now() - started);
      }
      times.sort((a, b) => a - b);
      const q = (p: number) => times[Math.min(times.length - 1, Math.floor(p * times.length))]!;
      const series = text.split('\n').filter((l) => l && !l.startsWith('#')).length;
      console.log(
        `\n/metrics with 50 topics (3 partitions) and 20 consumers: ${series} series, ${(text.length / 1024).toFixed(0)} kB; over ${scrapes} scrapes (HTTP, loopback): p50 ${q(0.5).toFixed(1)} ms, p99 ${q(0.99).toFixed(1)} ms, max ${times.at(-1)!.toFixed(1)} ms`,
      );
    } finally {
      await server.stop();
    }
  } finally {
    await log.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
