/**
 * Read-only SQL over a lake (`tributary sql`, `POST /api/sql`): one SELECT statement over
 * `bronze.<table>`, `silver.<table>`, `gold.<model>` at the current snapshot or `asOf` (a
 * timestamp: the newest snapshot committed at or before it; an LSN `X/Y` or a number: bronze up
 * to that LSN and silver rebuilt from it).
 *
 * Guarantees: anything but one SELECT is rejected before it runs; the DuckDB session cannot read
 * or write files outside the lake (external access off, lake directory allowed, configuration
 * locked); a query is interrupted after `timeoutMs`; at most `maxRows` rows come back
 * (`truncated` says when there were more). Nothing here writes to the lake.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DuckDBInstance, StatementType } from '@duckdb/node-api';
import { TributaryError } from '../../core/errors.ts';
import { LakeCatalog } from './lake-catalog.ts';
import { literal } from './lake-columns.ts';
import { lakeMissing } from './lake-options.ts';
import { withTimeLimit } from './lake-time-limit.ts';
import { createLakeViews, type ViewTarget } from './lake-views.ts';

export class LakeQueryError extends TributaryError {
  constructor(code: string, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(code, message, { ...options, retryable: false });
  }
}

function readOnly(what: string): LakeQueryError {
  return new LakeQueryError('LAKE_SQL_READ_ONLY', `only SELECT queries run on the lake (got ${what})`, {
    hint: 'the lake is written by its sink; query it with SELECT',
  });
}

export interface LakeQueryOptions {
  readonly asOf?: string;
  readonly timeoutMs?: number;
  readonly maxRows?: number;
}

export interface LakeQueryResult {
  readonly columns: string[];
  readonly rows: unknown[][];
  readonly truncated: boolean;
  readonly snapshot: number;
}

/** Parses `X/Y` or a plain integer as an LSN; undefined otherwise. */
export function parseLsn(text: string): number | undefined {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text);
  if (m) return Number.parseInt(m[1]!, 16) * 2 ** 32 + Number.parseInt(m[2]!, 16);
  if (/^\d+$/.test(text)) return Number(text);
  return undefined;
}

function resolveTarget(catalog: LakeCatalog, asOf: string | undefined): ViewTarget {
  const current = catalog.currentSnapshot();
  if (asOf === undefined) return { snapshot: current };
  const lsn = parseLsn(asOf);
  if (lsn !== undefined) return { snapshot: current, lsn };
  const ms = Date.parse(asOf);
  if (Number.isNaN(ms)) {
    throw new LakeQueryError(
      'LAKE_AS_OF_INVALID',
      `--as-of ${JSON.stringify(asOf)} is neither a timestamp nor an LSN`,
      {
        hint: 'give an ISO timestamp (2026-01-02T03:04:05.123Z) or an LSN (16/B374D848 or a number)',
      },
    );
  }
  const snapshot = catalog.snapshotAt(ms);
  if (snapshot === undefined) {
    const oldest = catalog.snapshots()[0];
    throw new LakeQueryError(
      'LAKE_AS_OF_EXPIRED',
      `no lake snapshot at or before ${new Date(ms).toISOString()}`,
      {
        hint: oldest
          ? `the oldest retained snapshot was committed at ${new Date(oldest.committedAt).toISOString()}`
          : 'the lake has no snapshot yet',
      },
    );
  }
  return { snapshot };
}

export async function queryLake(
  root: string,
  sql: string,
  options: LakeQueryOptions = {},
): Promise<LakeQueryResult> {
  if (!existsSync(join(root, 'catalog.db'))) {
    const { message, hint } = lakeMissing(root);
    throw new LakeQueryError('LAKE_NOT_FOUND', message, { hint });
  }
  const catalog = new LakeCatalog(join(root, 'catalog.db'));
  const instance = await DuckDBInstance.create(':memory:', { threads: '2', memory_limit: '1GB' });
  const connection = await instance.connect();
  try {
    const target = resolveTarget(catalog, options.asOf);
    await createLakeViews(connection, catalog, root, target);
    catalog.close();
    await connection.run(`SET allowed_directories = [${literal(`${root}/`)}]`);
    await connection.run('SET enable_external_access = false');
    await connection.run('SET lock_configuration = true');
    const extracted = await connection.extractStatements(sql).catch((error: unknown) => {
      throw new LakeQueryError('LAKE_SQL_INVALID', `SQL error: ${(error as Error).message}`, {
        cause: error,
      });
    });
    if (extracted.count !== 1) {
      throw new LakeQueryError('LAKE_SQL_INVALID', `give one SQL statement (got ${extracted.count})`);
    }
    const head =
      /^\s*(?:(?:--[^\n]*\n|\/\*[\s\S]*?\*\/)\s*)*([A-Za-z(]+)/.exec(sql)?.[1]?.toLowerCase() ?? '';
    if (!/^(\(|select|with|from|values|table|pivot|unpivot)/.test(head)) throw readOnly(head.toUpperCase());
    const prepared = await extracted.prepare(0).catch((error: unknown) => {
      throw new LakeQueryError('LAKE_SQL_INVALID', `SQL error: ${(error as Error).message}`, {
        cause: error,
        hint: 'tables: bronze.<table>, silver.<table>, gold.<model> (see `tributary lake status`)',
      });
    });
    if (prepared.statementType !== StatementType.SELECT) {
      throw readOnly(StatementType[prepared.statementType] ?? 'another statement');
    }
    const timeoutMs = options.timeoutMs ?? 30_000;
    const maxRows = options.maxRows ?? 10_000;
    const timeout = () =>
      new LakeQueryError('LAKE_SQL_TIMEOUT', `the query ran longer than ${timeoutMs} ms and was stopped`, {
        hint: 'narrow it (WHERE, LIMIT) or raise the limit (--timeout)',
      });
    try {
      return await withTimeLimit(
        connection,
        timeoutMs,
        async () => {
          const reader = await prepared.streamAndReadUntil(maxRows + 1);
          const rows = reader.getRowsJson() as unknown[][];
          return {
            columns: reader.columnNames(),
            rows: rows.slice(0, maxRows),
            truncated: rows.length > maxRows,
            snapshot: target.snapshot,
          };
        },
        timeout,
      );
    } catch (error) {
      if (error instanceof LakeQueryError) throw error;
      throw new LakeQueryError('LAKE_SQL_FAILED', `SQL error: ${(error as Error).message}`, { cause: error });
    }
  } finally {
    if (catalog.db.open) catalog.close();
    connection.closeSync();
    instance.closeSync();
  }
}
