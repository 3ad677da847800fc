/**
 * The built-in sink kinds by name. Each kind is one folder (`src/sinks/<kind>/`) whose module is
 * imported only when a sink of that kind is configured, so a replica loads just its own driver.
 */
import { ConfigError } from '../core/errors.ts';
import type { SinkKind } from './sink.ts';

type Loader = () => Promise<SinkKind<unknown>>;

const KINDS: ReadonlyMap<string, Loader> = new Map<string, Loader>([
  // Each entry: ['<kind>', async () => (await import('./<kind>/<kind>-sink.ts')).<kind>SinkKind],
  ['table', async () => (await import('./table/table-sink.ts')).tableSinkKind as SinkKind<unknown>],
  ['redis', async () => (await import('./redis/redis-sink.ts')).redisSinkKind as SinkKind<unknown>],
  ['webhook', async () => (await import('./webhook/webhook-sink.ts')).webhookSinkKind as SinkKind<unknown>],
  ['search', async () => (await import('./search/search-sink.ts')).searchSinkKind as SinkKind<unknown>],
  [
    'inventory',
    async () => (await import('./inventory/inventory-sink.ts')).inventorySinkKind as SinkKind<unknown>,
  ],
  [
    'sales-analytics',
    async () =>
      (await import('./sales-analytics/sales-analytics-sink.ts')).salesAnalyticsSinkKind as SinkKind<unknown>,
  ],
  ['lake', async () => (await import('./lake/lake-sink.ts')).lakeSinkKind as SinkKind<unknown>],
]);

const extra = new Map<string, Loader>();

/** Names of every kind, for errors and docs. */
export function sinkKindNames(): string[] {
  return [...KINDS.keys(), ...extra.keys()].sort();
}

/** Registers a kind that is not built in (tests). */
export function registerSinkKind(kind: SinkKind<unknown>): void {
  extra.set(kind.kind, async () => kind);
}

export async function loadSinkKind(kind: string, where: string): Promise<SinkKind<unknown>> {
  const loader = KINDS.get(kind) ?? extra.get(kind);
  if (!loader) {
    throw new ConfigError(`${where}.kind: unknown sink kind ${JSON.stringify(kind)}`, {
      hint: `use one of: ${sinkKindNames().join(', ') || '(none built in)'}`,
    });
  }
  return loader();
}
