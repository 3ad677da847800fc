import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConsumerMetrics } from '../../src/consumers/consumer-metrics.ts';
import { waitFor } from '../support/capture-harness.ts';
import { type Pipeline, startPipeline } from './server-support.ts';

const VERSION = 18;

/** `name{labels} value` lines of an exposition, as a map from the series to its value. */
function series(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

/** Metric family names of an exposition (from `# TYPE`), with the histogram/summary suffixes. */
function families(text: string): Set<string> {
  const names = new Set<string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, type] = m;
    names.add(name!);
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(`${name}${s}`);
    if (type === 'summary') for (const s of ['_sum', '_count']) names.add(`${name}${s}`);
  }
  return names;
}

describe('/metrics', () => {
  let p: Pipeline;
  const consumers = new ConsumerMetrics();

  beforeAll(async () => {
    p = await startPipeline(VERSION);
    // The consumers' registry as the supervisor fills it, merged into /metrics.
    consumers.addCounters('orders', {
      processed: 3,
      failed: 1,
      retried: 1,
      deadLettered: 1,
      durations: [0.01],
    });
    consumers.setLag('orders', 4, 2);
    consumers.setReplicas('orders', 2, 0);
    consumers.restarted('orders');
    p.server.attach({
      supervisor: {
        registry: consumers.registry,
        list: async () => [],
        scale: async () => false,
        pause: async () => false,
        resume: async () => false,
        restart: async () => false,
      },
    });
  });
  afterAll(async () => {
    await p?.stop();
  });

  const scrape = async () => {
    const r = await p.request('/metrics');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toContain('text/plain');
    return r.text;
  };

  it('exposes capture, source, log, consumer and process metrics that move with the workload', async () => {
    const table = 'public.items';
    const topic = `${p.config.topicPrefix}.public.items`;
    await waitFor(async () => series(await scrape()).get('tributary_source_connected') === 1, 'connected');
    const before = series(await scrape());
    const inserts = before.get(`tributary_capture_events_total{table="${table}",op="c"}`) ?? 0;
    const latencyCount = before.get('tributary_capture_commit_to_log_seconds_count') ?? 0;

    await p.db.query(`insert into items select g, 'n' || g from generate_series(1, 200) g`);
    await p.db.query(`update items set name = 'u' where id <= 50`);
    await p.db.query(`delete from items where id <= 10`);
    const after = await waitFor(async () => {
      const s = series(await scrape());
      return (s.get(`tributary_capture_events_total{table="${table}",op="d"}`) ?? 0) >= 10 && s;
    }, 'the delete events counted');

    expect(after.get(`tributary_capture_events_total{table="${table}",op="c"}`)).toBe(inserts + 200);
    expect(after.get(`tributary_capture_events_total{table="${table}",op="u"}`)).toBe(50);
    expect(after.get(`tributary_capture_events_total{table="${table}",op="d"}`)).toBe(10);
    expect(after.get('tributary_capture_transactions_total')).toBeGreaterThanOrEqual(3);
    // 200 + 50 + 10 deletes + 10 tombstones (+ the schema history record of the table).
    expect(after.get('tributary_capture_records_total')).toBeGreaterThanOrEqual(270);
    expect(after.get('tributary_capture_appends_total')).toBeGreaterThanOrEqual(1);
    expect(after.get('tributary_capture_commit_to_log_seconds_count')).toBeGreaterThan(latencyCount);
    expect(after.get('tributary_capture_commit_to_log_seconds_sum')).toBeGreaterThan(0);
    expect(after.get('tributary_capture_commit_to_log_seconds_bucket{le="+Inf"}')).toBe(
      after.get('tributary_capture_commit_to_log_seconds_count'),
    );
    expect(after.get('tributary_capture_last_commit_timestamp_seconds')).toBeGreaterThan(
      Date.now() / 1000 - 120,
    );
    expect(after.get(`tributary_log_records{topic="${topic}"}`)).toBe(270);
    expect(after.get(`tributary_log_bytes{topic="${topic}"}`)).toBeGreaterThan(270 * 50);
    expect(after.get('tributary_log_topics')).toBeGreaterThanOrEqual(1);
    expect(after.get('tributary_source_received_bytes_total')).toBeGreaterThan(0);
    expect(after.get('tributary_source_reconnects_total')).toBe(0);
    const withSlot = await waitFor(async () => {
      const s = series(await scrape());
      return s.has('tributary_source_slot_lag_bytes') && s;
    }, 'the slot state polled');
    expect(withSlot.get('tributary_source_slot_lag_bytes')).toBeGreaterThanOrEqual(0);
    expect(withSlot.get('tributary_source_retained_wal_bytes')).toBeGreaterThan(0);
    // The consumers' registry, merged.
    expect(after.get('tributary_consumer_records_processed_total{consumer="orders"}')).toBe(3);
    expect(after.get('tributary_consumer_lag_records{consumer="orders"}')).toBe(4);
    expect(after.get('tributary_consumer_replicas{consumer="orders"}')).toBe(2);
    // Process metrics.
    expect(after.get('process_resident_memory_bytes')).toBeGreaterThan(10_000_000);
    expect(after.has('nodejs_eventloop_lag_p99_seconds')).toBe(true);
  });

  it('follows the naming conventions: _total counters, base units, few labels', async () => {
    const text = await scrape();
    for (const m of text.matchAll(/^# TYPE (tributary_\S+) (\S+)$/gm)) {
      const [, name, type] = m;
      if (type === 'counter') expect(name).toMatch(/_total$/);
      else expect(name).not.toMatch(/_total$/);
      expect(name).not.toMatch(/_(ms|milliseconds|kb|mb)(_|$)/);
    }
    for (const line of text.split('\n').filter((l) => l.startsWith('tributary_'))) {
      const labels = /\{(.*)\}/.exec(line)?.[1] ?? '';
      expect(labels.split(',').filter(Boolean).length, line).toBeLessThanOrEqual(2);
    }
  });

  it('has every metric the Grafana dashboard and the Prometheus rules use', async () => {
    const names = families(await scrape());
    const used = new Set<string>();
    const grafana = JSON.parse(readFileSync('deploy/grafana/tributary-dashboard.json', 'utf8')) as {
      panels: { targets?: { expr: string }[] }[];
      templating: { list: { query?: unknown }[] };
    };
    const exprs = [
      ...grafana.panels.flatMap((panel) => (panel.targets ?? []).map((t) => t.expr)),
      ...grafana.templating.list.map((v) => (typeof v.query === 'string' ? v.query : '')),
      ...[
        ...readFileSync('deploy/prometheus/alerts.yml', 'utf8').matchAll(
          /expr: (?:\|\n)?([^\n]+(?:\n {12}[^\n]+)*)/g,
        ),
      ].map((m) => m[1]!),
    ];
    expect(exprs.length).toBeGreaterThan(30);
    for (const expr of exprs) {
      for (const m of expr.matchAll(/\b((?:tributary|process|nodejs)_[a-z0-9_]+)/g)) used.add(m[1]!);
    }
    expect(used.size).toBeGreaterThan(25);
    const missing = [...used].filter((n) => !names.has(n));
    expect(missing).toEqual([]);
  });
});
