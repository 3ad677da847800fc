/**
 * The read models a pipeline keeps (search indexes, inventories, sales analytics), found from the
 * `sinks` setting: name, kind, the file to read and the options the readers need. Used by the
 * API, the CLI and the dashboard to answer queries without running in the sink's process.
 */
import { existsSync } from 'node:fs';
import type { TributaryConfig } from '../config/config-schema.ts';
import { TributaryError } from '../core/errors.ts';
import { serviceFile } from './commerce/commerce-sink.ts';
import { type InventoryOptions, inventoryOptions } from './inventory/inventory-sink.ts';
import { type SalesAnalyticsOptions, salesAnalyticsOptions } from './sales-analytics/sales-analytics-sink.ts';
import { searchFile, searchOptions } from './search/search-sink.ts';

export type ServiceEntry =
  | { readonly name: string; readonly kind: 'search'; readonly file: string }
  | {
      readonly name: string;
      readonly kind: 'inventory';
      readonly file: string;
      readonly options: InventoryOptions;
    }
  | {
      readonly name: string;
      readonly kind: 'sales-analytics';
      readonly file: string;
      readonly options: SalesAnalyticsOptions;
    };

export type ServiceKind = ServiceEntry['kind'];

/** The services among `config.sinks` (a sink whose options do not parse is left out: `run` reports it). */
export function serviceCatalog(config: Pick<TributaryConfig, 'sinks' | 'dataDir'>): ServiceEntry[] {
  const out: ServiceEntry[] = [];
  for (const [name, raw] of Object.entries(config.sinks ?? {})) {
    const {
      kind,
      tables: _t,
      topics: _p,
      replicas: _r,
      batchSize: _b,
      retryAttempts: _a,
      memoryMb: _m,
      enabled,
      ...rest
    } = (raw ?? {}) as Record<string, unknown>;
    if (enabled === false) continue;
    const env = { dataDir: config.dataDir, name };
    if (kind === 'search') {
      const o = searchOptions.safeParse(rest);
      if (o.success) out.push({ name, kind, file: searchFile(o.data, env) });
    } else if (kind === 'inventory') {
      const o = inventoryOptions.safeParse(rest);
      if (o.success) out.push({ name, kind, file: serviceFile(o.data, env), options: o.data });
    } else if (kind === 'sales-analytics') {
      const o = salesAnalyticsOptions.safeParse(rest);
      if (o.success) out.push({ name, kind, file: serviceFile(o.data, env), options: o.data });
    }
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : 1));
}

/** An unknown service, or one with no data yet (404 in the API, exit code 1 in the CLI). */
export class ServiceNotFoundError extends TributaryError {
  constructor(message: string, hint: string) {
    super('UNKNOWN_SERVICE', message, { hint });
  }
}

/**
 * The service `name` of `kind`; without a name, the only one of that kind. Throws a
 * `ServiceNotFoundError` (code UNKNOWN_SERVICE) naming the ones there are.
 */
export function findService<K extends ServiceKind>(
  catalog: readonly ServiceEntry[],
  kind: K,
  name: string | undefined,
): Extract<ServiceEntry, { kind: K }> {
  const ofKind = catalog.filter((s): s is Extract<ServiceEntry, { kind: K }> => s.kind === kind);
  const found =
    name === undefined ? (ofKind.length === 1 ? ofKind[0] : undefined) : ofKind.find((s) => s.name === name);
  if (found) {
    if (!existsSync(found.file)) {
      throw new ServiceNotFoundError(
        `${kind} ${found.name} has no data yet (${found.file} does not exist)`,
        'it is created when the sink first runs: start `tributary run` or `tributary up`',
      );
    }
    return found;
  }
  const names = ofKind.map((s) => s.name).join(', ') || '(none configured)';
  throw new ServiceNotFoundError(
    name === undefined && ofKind.length > 1
      ? `more than one ${kind} sink: name one`
      : `no ${kind} sink${name === undefined ? '' : ` named ${JSON.stringify(name)}`}`,
    `${kind} sinks: ${names}`,
  );
}
