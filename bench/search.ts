/**
 * Search sink: query latency over an index of N products (default 100,000), the index built by
 * the sink's own writer (`IndexWriter`, one transaction per 5,000 documents as batches commit),
 * queried by the reader the API and the CLI use (`SearchReader`, read-only, as while the sink
 * writes). Queries mix one word, two words, a prefix and a price range, over a vocabulary of 2,000
 * words (Zipf-like: some words are in many documents). Reference: the same query as `LIKE` on a
 * plain table (what a table without an FTS index gives). The price queries also run through a
 * reader that counts without the bucket table (`buckets: false`), to compare.
 *
 *   npx tsx bench/search.ts [--docs 100000] [--queries 2000]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { createIndex, IndexWriter } from '../src/sinks/search/search-index.ts';
import { RANK_WINDOW, SearchReader } from '../src/sinks/search/search-reader.ts';
import { searchLayout, searchOptions } from '../src/sinks/search/search-sink.ts';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const DOCS = arg('docs', 100_000);
const QUERIES = arg('queries', 2_000);

let seed = 42;
const random = () => {
  seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
  return seed / 2_147_483_648;
};
const LETTERS = 'abcdefghijklmnopqrstuvwxyz';
const VOCABULARY = Array.from({ length: 2000 }, () =>
  Array.from({ length: 4 + Math.floor(random() * 6) }, () => LETTERS[Math.floor(random() * 26)]).join(''),
);
// Zipf-like: word i drawn with weight ~ 1/(i+1).
const word = () =>
  VOCABULARY[Math.min(VOCABULARY.length - 1, Math.floor(Math.exp(random() * Math.log(2001)) - 1))] as string;
const words = (n: number) => Array.from({ length: n }, word).join(' ');

let peakRss = 0;
const sampleRss = () => {
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
};
const rssTimer = setInterval(sampleRss, 50);

const dir = mkdtempSync(join(tmpdir(), 'bench-search-'));
const file = join(dir, 'index.db');
const db = new Database(file);
db.pragma('journal_mode = WAL');
const layout = searchLayout(searchOptions.parse({}));
createIndex(db, layout, 'bench');
const writer = new IndexWriter(db, layout);
const plain = db.prepare(
  'create table plain (id integer primary key, name text, description text, price real)',
);
plain.run();
const insertPlain = db.prepare('insert into plain values (?, ?, ?, ?)');
let t = performance.now();
for (let start = 0; start < DOCS; start += 5000) {
  db.transaction(() => {
    for (let id = start + 1; id <= Math.min(DOCS, start + 5000); id++) {
      const doc = { id, name: words(3), description: words(12), price: (1 + random() * 500).toFixed(2) };
      writer.upsert(String(id), doc, id);
      insertPlain.run(id, doc.name, doc.description, Number(doc.price));
    }
  })();
}
const buildSeconds = (performance.now() - t) / 1000;
db.close();

const reader = new SearchReader(file);
const plainDb = new Database(file, { readonly: true });
const like = plainDb.prepare(
  'select id from plain where (name like ? or description like ?) order by id limit 10',
);
const queries = Array.from({ length: QUERIES }, (_, i) => {
  const kind = i % 4;
  if (kind === 0) return { q: word() };
  if (kind === 1) return { q: words(2) };
  if (kind === 2) return { q: `${word().slice(0, 3)}*` };
  const lo = Math.floor(random() * 400);
  return { q: word(), filters: [`price:${lo}..${lo + 50}`] };
});
const percentile = (xs: number[], p: number) =>
  xs.sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))] ?? 0;
// The reader as shipped, and the same reader scoring every match (the ranking before the rank
// window), over the same queries, alternately.
const unlimited = new SearchReader(file, {
  rankWindow: Number.MAX_SAFE_INTEGER,
  countLimit: Number.MAX_SAFE_INTEGER,
});
// The reader as shipped but counting a range filter's matches by looking up each one's numbers
// (the plan before the bucket table), for the price queries.
const lookups = new SearchReader(file, { buckets: false });
const lookupCpu: number[] = [];
let sameLookups = 0;
const times: number[] = [];
const fullTimes: number[] = [];
// CPU time of the query (user + system): on a shared machine the wall time also holds the time
// spent waiting for a core; this part does not.
const cpuTimes: number[] = [];
const fullCpuTimes: number[] = [];
const byKind: number[][] = [[], [], [], []];
const fullByKind: number[][] = [[], [], [], []];
const cpuByKind: number[][] = [[], [], [], []];
const fullCpuByKind: number[][] = [[], [], [], []];
const KINDS = ['one word', 'two words', 'prefix (3 letters)', 'word + price range'];
let hits = 0;
let maxHits = 0;
let windowed = 0;
let sameTop = 0;
const measure = (r: SearchReader, q: (typeof queries)[number]) => {
  const cpu = process.cpuUsage();
  const start = performance.now();
  const result = r.search({ ...q, limit: 10 });
  const elapsed = performance.now() - start;
  const used = process.cpuUsage(cpu);
  return { result, elapsed, cpu: (used.user + used.system) / 1000 };
};
queries.forEach((q, i) => {
  const full = measure(unlimited, q);
  const ours = measure(reader, q);
  if (i % 4 === 3) {
    const before = measure(lookups, q);
    lookupCpu.push(before.cpu);
    if (JSON.stringify(before.result) === JSON.stringify(ours.result)) sameLookups++;
  }
  fullTimes.push(full.elapsed);
  fullCpuTimes.push(full.cpu);
  fullByKind[i % 4]?.push(full.elapsed);
  fullCpuByKind[i % 4]?.push(full.cpu);
  cpuByKind[i % 4]?.push(ours.cpu);
  times.push(ours.elapsed);
  cpuTimes.push(ours.cpu);
  byKind[i % 4]?.push(ours.elapsed);
  hits += full.result.total;
  maxHits = Math.max(maxHits, full.result.total);
  if (ours.result.scored < full.result.total) windowed++;
  if (ours.result.hits[0]?.key === full.result.hits[0]?.key) sameTop++;
});
const likeTimes: number[] = [];
for (const q of queries.slice(0, Math.min(200, QUERIES))) {
  const w = `%${q.q.replace('*', '')}%`;
  t = performance.now();
  like.all(w, w);
  likeTimes.push(performance.now() - t);
}
sampleRss();
clearInterval(rssTimer);
reader.close();
unlimited.close();
lookups.close();
plainDb.close();
rmSync(dir, { recursive: true, force: true });

const ms = (x: number) => `${x.toFixed(2)} ms`;
console.log(
  `search bench: ${DOCS.toLocaleString('en')} documents (built in ${buildSeconds.toFixed(1)} s), ${QUERIES} queries, ${(hits / QUERIES).toFixed(0)} matches per query on average`,
);
const row = (label: string, a: number[], b: number[]) =>
  console.log(
    `| ${label.padEnd(27)} | ${ms(percentile(a, 0.5)).padStart(9)} | ${ms(percentile(a, 0.99)).padStart(9)} | ${ms(percentile(b, 0.5)).padStart(9)} | ${ms(percentile(b, 0.99)).padStart(9)} |`,
  );
console.log('| query                       | p50 now   | p99 now   | p50 all   | p99 all   |');
console.log('| --------------------------- | --------- | --------- | --------- | --------- |');
row('all kinds, wall', times, fullTimes);
row('all kinds, CPU time', cpuTimes, fullCpuTimes);
for (const [i, kind] of KINDS.entries()) row(`  ${kind}`, byKind[i] ?? [], fullByKind[i] ?? []);
for (const [i, kind] of KINDS.entries()) row(`  ${kind}, CPU`, cpuByKind[i] ?? [], fullCpuByKind[i] ?? []);
row('LIKE on a plain table', likeTimes, likeTimes);
console.log(
  `word + price range, CPU, counting by looking up every match's price (no buckets): p50 ${ms(percentile(lookupCpu, 0.5))}, p99 ${ms(percentile(lookupCpu, 0.99))}; same answers as with buckets: ${sameLookups} of ${lookupCpu.length}`,
);
console.log(
  `("now": the reader as shipped, bm25 over the first ${RANK_WINDOW.toLocaleString('en')} matches; "all": bm25 over every match)`,
);
console.log(
  `queries over the rank window: ${windowed} of ${QUERIES}; same best hit as scoring every match: ${sameTop} of ${QUERIES}`,
);
console.log(`most matches of one query: ${maxHits.toLocaleString('en')}`);
console.log(
  `load average at the end: ${(await import('node:os'))
    .loadavg()
    .map((x) => x.toFixed(1))
    .join(' ')}`,
);
console.log(`peak RSS ${(peakRss / 1024 / 1024).toFixed(0)} MiB`);
