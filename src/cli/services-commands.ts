/** `tributary inventory` and `tributary analytics`: the e-commerce services' read models. */
import type { Command } from 'commander';
import { ConfigError } from '../core/errors.ts';
import { ANALYTICS_REPORTS, type AnalyticsReport } from '../sinks/sales-analytics/analytics-queries.ts';
import { findService } from '../sinks/service-catalog.ts';
import {
  analyticsReport,
  inventoryAlerts,
  inventoryList,
  inventoryProduct,
} from '../sinks/service-queries.ts';
import { type CatalogFlags, catalogOf, catalogOptions, printRows } from './services-catalog-flags.ts';

interface ServiceFlags extends CatalogFlags {
  service?: string;
  limit?: string;
  low?: boolean;
  alerts?: boolean;
}

function limitOf(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1)
    throw new ConfigError(`--limit must be an integer ≥ 1, not ${JSON.stringify(text)}`);
  return n;
}

export function registerServices(program: Command): void {
  catalogOptions(
    program
      .command('inventory')
      .description(
        'Stock per product from an `inventory` sink: stock, units taken by orders, available, low (alert). With a product id: that product.',
      )
      .argument('[product-id]', 'one product')
      .option('--service <name>', 'the inventory sink (default: the only one)')
      .option('--low', 'only products with a low-stock alert')
      .option('--alerts', 'the low-stock alert events (raised, resolved), newest first')
      .option('--limit <n>', 'rows to print'),
  ).action((productId: string | undefined, flags: ServiceFlags) => {
    const entry = findService(catalogOf(flags), 'inventory', flags.service);
    const limit = limitOf(flags.limit);
    if (flags.alerts) {
      printRows(inventoryAlerts(entry, { ...(limit ? { limit } : {}) }) as never, flags.json);
      return;
    }
    if (productId !== undefined) {
      const id = Number(productId);
      if (!Number.isSafeInteger(id))
        throw new ConfigError(`product id must be an integer, not ${JSON.stringify(productId)}`);
      const product = inventoryProduct(entry, id);
      if (!product) {
        process.stderr.write(`no product ${id} in ${entry.name}\n`);
        process.exitCode = 1;
        return;
      }
      printRows([product as never], flags.json);
      return;
    }
    printRows(
      inventoryList(entry, { lowOnly: flags.low === true, ...(limit ? { limit } : {}) }) as never,
      flags.json,
    );
  });

  catalogOptions(
    program
      .command('analytics')
      .description(
        `Sales figures from a \`sales-analytics\` sink: ${ANALYTICS_REPORTS.join(', ')} (top lists: 100 by default, ties by id).`,
      )
      .argument('<report>', ANALYTICS_REPORTS.join(' | '))
      .option('--service <name>', 'the sales-analytics sink (default: the only one)')
      .option('--limit <n>', 'rows of a top list (default 100)'),
  ).action((report: string, flags: ServiceFlags) => {
    if (!(ANALYTICS_REPORTS as readonly string[]).includes(report)) {
      throw new ConfigError(`unknown report ${JSON.stringify(report)}`, {
        hint: `use one of: ${ANALYTICS_REPORTS.join(', ')}`,
      });
    }
    const entry = findService(catalogOf(flags), 'sales-analytics', flags.service);
    printRows(analyticsReport(entry, report as AnalyticsReport, limitOf(flags.limit)) as never, flags.json);
  });
}
