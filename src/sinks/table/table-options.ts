/**
 * Options of the `table` sink (`sinks.<name>.*` besides the common ones), and the resolved
 * mapping of one source table to its target table.
 */
import { z } from 'zod';

const IDENT = /^[A-Za-z_][A-Za-z0-9_$]*$/;
const ident = z.string().regex(IDENT, 'must be a plain SQL identifier (letters, digits, _)');

export const TABLE_MAPPING = z
  .object({
    targetTable: ident
      .optional()
      .describe('Name of the target table (default: the source table name, without its schema).'),
    columns: z
      .array(z.string().min(1))
      .min(1)
      .optional()
      .describe('Source columns to keep (default: all). The key columns are always kept.'),
    rename: z.record(z.string(), ident).optional().describe('Source column → target column name.'),
    types: z
      .record(z.string(), z.string().min(1))
      .optional()
      .describe(
        'Source column → target type for columns the sink creates (PostgreSQL type, e.g. `numeric(12,2)`, `timestamp`, `jsonb`; for SQLite one of: integer, real, text, blob, boolean, numeric, timestamp, timestamptz, date, time, json, jsonb, bytea).',
      ),
  })
  .strict();

export const TABLE_OPTIONS = z
  .object({
    target: z
      .string()
      .regex(/^(postgres(ql)?:\/\/|sqlite:)/, 'must start with postgres:// (or postgresql://) or sqlite:')
      .describe('Where the tables are kept: `postgres://user:pass@host/db` or `sqlite:<file path>`.'),
    schema: ident
      .optional()
      .describe('PostgreSQL target schema (default `public`; created if missing). Ignored for SQLite.'),
    mapping: z
      .record(z.string(), TABLE_MAPPING)
      .optional()
      .describe(
        'Per source table (`schema.table`, as in `tables`): `targetTable`, `columns`, `rename`, `types`.',
      ),
    createTables: z
      .boolean()
      .optional()
      .describe(
        'Create missing target tables and add columns a record brings (default true). Off: a missing table or column is a dead letter.',
      ),
  })
  .strict();

export type TableOptions = z.infer<typeof TABLE_OPTIONS>;
export type TableMapping = z.infer<typeof TABLE_MAPPING>;

/** One source table as the target sees it. */
export interface ResolvedMapping {
  readonly source: string;
  readonly target: string;
  readonly columns: ReadonlySet<string> | undefined;
  readonly rename: Readonly<Record<string, string>>;
  readonly types: Readonly<Record<string, string>>;
}

/** The mapping of `source` (`schema.table`), with defaults. */
export function resolveMapping(options: TableOptions, source: string): ResolvedMapping {
  const m = options.mapping?.[source] ?? {};
  const bare = source.slice(source.indexOf('.') + 1);
  return {
    source,
    target: m.targetTable ?? bare,
    columns: m.columns ? new Set(m.columns) : undefined,
    rename: m.rename ?? {},
    types: m.types ?? {},
  };
}

/** The target's kind and address from `target`. */
export function parseTarget(
  target: string,
): { kind: 'postgres'; url: string } | { kind: 'sqlite'; file: string } {
  return target.startsWith('sqlite:')
    ? { kind: 'sqlite', file: target.slice('sqlite:'.length) }
    : { kind: 'postgres', url: target };
}

export function isIdentifier(name: string): boolean {
  return IDENT.test(name);
}
