/**
 * One question to one service, answered from its file (opened read-only for the question, so a
 * caller holds no handle between questions): the API, the CLI and the alert engine ask here.
 */
import { InventoryReader } from './inventory/inventory-queries.ts';
import { AnalyticsReader, type AnalyticsReport } from './sales-analytics/analytics-queries.ts';
import { SearchReader, type SearchRequest, type SearchResult } from './search/search-reader.ts';
import type { ServiceEntry } from './service-catalog.ts';

type Of<K extends ServiceEntry['kind']> = Extract<ServiceEntry, { kind: K }>;

function using<R extends { close(): void }, T>(reader: R, fn: (r: R) => T): T {
  try {
    return fn(reader);
  } finally {
    reader.close();
  }
}

export function searchIndex(entry: Of<'search'>, request: SearchRequest): SearchResult {
  return using(new SearchReader(entry.file), (r) => r.search(request));
}

export function inventoryList(
  entry: Of<'inventory'>,
  q: { limit?: number; offset?: number; lowOnly?: boolean },
) {
  return using(new InventoryReader(entry.file, entry.options), (r) => r.list(q));
}

export function inventoryProduct(entry: Of<'inventory'>, id: number) {
  return using(new InventoryReader(entry.file, entry.options), (r) => r.product(id));
}

export function inventoryAlerts(entry: Of<'inventory'>, q: { after?: number; limit?: number }) {
  return using(new InventoryReader(entry.file, entry.options), (r) => r.events(q));
}

export function analyticsReport(entry: Of<'sales-analytics'>, report: AnalyticsReport, limit?: number) {
  return using(new AnalyticsReader(entry.file, entry.options.scale), (r) => r.report(report, limit));
}
