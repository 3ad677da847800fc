/**
 * The sinks `tributary up` runs on the demo database (the e-commerce services and the lake),
 * added to the configured ones unless the user's config already has a sink of the same name.
 * Their state lives under the data directory, so a fresh `up` shows every capability with no setup.
 */
import { fileURLToPath } from 'node:url';
import type { TributaryConfig } from '../config/config-schema.ts';

const LAKE_MODELS = fileURLToPath(new URL('../../examples/ecommerce/lake-models', import.meta.url));

export function demoSinks(config: Pick<TributaryConfig, 'dataDir'>): Record<string, unknown> {
  // One entry per service: '<name>': { kind: '<kind>', ...options under config.dataDir }.
  void config;
  return {
    // The e-commerce services (docs/services.md); their defaults are the demo schema's names,
    // and their files default to <dataDir>/search/<name>.db and <dataDir>/services/<name>.db.
    'product-search': { kind: 'search' },
    // The demo's shop lowers stock_quantity itself when it takes an order: available = stock.
    inventory: { kind: 'inventory', threshold: 10 },
    sales: { kind: 'sales-analytics' },
    lake: {
      kind: 'lake',
      tables: ['public.customers', 'public.products', 'public.orders', 'public.order_items'],
      batchSize: 10_000,
      seedModels: LAKE_MODELS,
    },
  };
}

export function withDemoSinks<C extends Pick<TributaryConfig, 'dataDir' | 'sinks'>>(config: C): C {
  return { ...config, sinks: { ...demoSinks(config), ...config.sinks } };
}
