/** `tributary search <index> "<query>"`: full-text search of a `search` sink's index. */

import type { Command } from 'commander';
import { ConfigError } from '../core/errors.ts';
import { findService } from '../sinks/service-catalog.ts';
import { searchIndex } from '../sinks/service-queries.ts';
import { type CatalogFlags, catalogOf, catalogOptions, printRows } from './services-catalog-flags.ts';
import { output } from './stdout-writer.ts';

interface SearchFlags extends CatalogFlags {
  filter: string[];
  limit: string;
  offset: string;
}

function count(text: string, flag: string, min: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min)
    throw new ConfigError(`${flag} must be an integer ≥ ${min}, not ${JSON.stringify(text)}`);
  return n;
}

export function registerSearch(program: Command): void {
  catalogOptions(
    program
      .command('search')
      .description(
        'Search the index of a `search` sink: every word must match (`lam*` = prefix), best bm25 score first; --filter price:10..20 narrows by a numeric column.',
      )
      .argument('<index>', 'the search sink’s name (e.g. product-search)')
      .argument('[query]', 'words to find (empty: every document, filtered)', '')
      .option(
        '--filter <range>',
        'numeric range <column>:<min>..<max> (repeatable)',
        (v, all: string[]) => [...all, v],
        [],
      )
      .option('--limit <n>', 'hits to print', '10')
      .option('--offset <n>', 'hits to skip', '0'),
  ).action((index: string, query: string, flags: SearchFlags) => {
    const entry = findService(catalogOf(flags), 'search', index);
    const result = searchIndex(entry, {
      q: query,
      filters: flags.filter,
      limit: count(flags.limit, '--limit', 1),
      offset: count(flags.offset, '--offset', 0),
    });
    if (flags.json) {
      void output.write(`${JSON.stringify(result, null, 2)}\n`);
      return;
    }
    printRows(
      result.hits.map((h) => ({ key: h.key, score: Number(h.score.toFixed(3)), ...h.doc })),
      false,
    );
    void output.write(`${result.hits.length} of ${result.total}${result.totalExact ? '' : '+'} hits\n`);
  });
}
