/**
 * Gold models: `<lake>/models/<name>.sql`, one SELECT each, materialised as `gold.<name>`.
 * A model may read `bronze.*`, `silver.*` and other models (`gold.<other>`); models refresh in
 * dependency order (a cycle is an error naming the models).
 *
 * Guarantees: a refresh of one model writes its file (durable), then swaps it for the model's old
 * file in one snapshot. A model that fails (SQL error, not a SELECT, running past its time limit)
 * keeps its previous file, its error is stored in the catalog (`lake_models.error`) and returned;
 * the other models refresh. A refresh stopped by its `signal` (the sink closing) stores no error:
 * the model being run keeps its previous file and state, and the models after it are not run.
 */
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { StatementType } from '@duckdb/node-api';
import { ConfigError } from '../../core/errors.ts';
import type { LakeCatalog } from './lake-catalog.ts';
import { withTimeLimit } from './lake-time-limit.ts';
import { createLakeViews } from './lake-views.ts';
import { copyParquet, makeDurable, newFilePath } from './lake-writer.ts';

export interface Model {
  readonly name: string;
  readonly file: string;
  readonly sql: string;
  readonly dependsOn: readonly string[];
}

export interface ModelResult {
  readonly name: string;
  readonly rows?: number;
  readonly error?: string;
}

const MODEL_NAME = /^[a-z][a-z0-9_]*$/;

/** The models of `dir` in dependency order. */
export function loadModels(dir: string): Model[] {
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.sql'));
  } catch {
    return [];
  }
  const models = new Map<string, Model>();
  for (const f of files.sort()) {
    const name = f.slice(0, -4);
    if (!MODEL_NAME.test(name)) {
      throw new ConfigError(`lake model ${join(dir, f)}: invalid name "${name}"`, {
        hint: 'name model files with lower-case letters, digits and _ (the file name is the gold table name)',
      });
    }
    const sql = readFileSync(join(dir, f), 'utf8').trim().replace(/;\s*$/, '');
    models.set(name, { name, file: join(dir, f), sql, dependsOn: [] });
  }
  for (const m of models.values()) {
    const deps = new Set<string>();
    for (const match of m.sql.matchAll(/\bgold\s*\.\s*"?([a-z][a-z0-9_]*)"?/gi)) {
      const d = match[1]!.toLowerCase();
      if (models.has(d) && d !== m.name) deps.add(d);
    }
    models.set(m.name, { ...m, dependsOn: [...deps] });
  }
  const ordered: Model[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (m: Model, path: string[]) => {
    if (state.get(m.name) === 'done') return;
    if (state.get(m.name) === 'visiting') {
      throw new ConfigError(`lake models depend on each other in a cycle: ${[...path, m.name].join(' → ')}`);
    }
    state.set(m.name, 'visiting');
    for (const d of m.dependsOn) visit(models.get(d)!, [...path, m.name]);
    state.set(m.name, 'done');
    ordered.push(m);
  };
  for (const m of models.values()) visit(m, []);
  return ordered;
}

/** A model's refresh is stopped after this long unless told otherwise. */
export const DEFAULT_MODEL_TIMEOUT_MS = 300_000;

/**
 * Refreshes `models` one after the other; see the guarantees above. `serialize` runs the catalog
 * reads and writes (the sink's queue, so that models run beside its batches on a connection of
 * their own and only their commits wait for them); `signal` stops the refresh.
 */
export async function refreshModels(
  connection: DuckDBConnection,
  catalog: LakeCatalog,
  root: string,
  models: readonly Model[],
  options: {
    timeoutMs?: number;
    now?: () => number;
    serialize?: <T>(run: () => Promise<T>) => Promise<T>;
    signal?: AbortSignal;
  } = {},
): Promise<ModelResult[]> {
  const now = options.now ?? Date.now;
  const timeoutMs = options.timeoutMs ?? DEFAULT_MODEL_TIMEOUT_MS;
  const serialize = options.serialize ?? ((run) => run());
  const { signal } = options;
  const stop = () => connection.interrupt();
  signal?.addEventListener('abort', stop);
  try {
    const results: ModelResult[] = [];
    for (const m of models) {
      if (signal?.aborted) break;
      const result = await refreshModel(connection, catalog, root, m, { now, timeoutMs, serialize, signal });
      if (result) results.push(result);
    }
    return results;
  } finally {
    signal?.removeEventListener('abort', stop);
  }
}

/** Refreshes one model; undefined when `signal` stopped it. */
async function refreshModel(
  connection: DuckDBConnection,
  catalog: LakeCatalog,
  root: string,
  m: Model,
  options: {
    now: () => number;
    timeoutMs: number;
    serialize: <T>(run: () => Promise<T>) => Promise<T>;
    signal: AbortSignal | undefined;
  },
): Promise<ModelResult | undefined> {
  const { now, timeoutMs, serialize, signal } = options;
  await serialize(() => createLakeViews(connection, catalog, root, { snapshot: catalog.currentSnapshot() }));
  const path = newFilePath('gold', m.name);
  const full = join(root, path);
  try {
    const extracted = await connection.extractStatements(m.sql);
    if (extracted.count !== 1) throw new Error('a model is one SELECT statement');
    const prepared = await extracted.prepare(0);
    if (prepared.statementType !== StatementType.SELECT) throw new Error('a model is a SELECT statement');
    // Stopped meanwhile: the interruption came before the query it would have stopped.
    if (signal?.aborted) return undefined;
    const rows = await withTimeLimit(
      connection,
      timeoutMs,
      () => copyParquet(connection, m.sql, full),
      () => new Error(`ran longer than ${timeoutMs / 1000} s and was stopped (modelsTimeoutSeconds)`),
    );
    makeDurable(root, [path]);
    await serialize(() =>
      catalog.write(async () => {
        const old = catalog.files(catalog.currentSnapshot(), 'gold').filter((f) => f.name === m.name);
        catalog.addSnapshot({
          kind: 'gold',
          added: [
            {
              layer: 'gold',
              name: m.name,
              path,
              rows,
              bytes: statSync(full).size,
              minLsn: 0,
              maxLsn: 0,
              compacted: false,
              day: null,
            },
          ],
          removed: old.map((f) => f.id),
          now: now(),
        });
        catalog.db
          .prepare(
            'insert into lake_models (name, refreshed_at, error) values (?, ?, null) on conflict do update set refreshed_at = excluded.refreshed_at, error = null',
          )
          .run(m.name, now());
      }),
    );
    return { name: m.name, rows };
  } catch (error) {
    rmSync(full, { force: true });
    if (signal?.aborted) return undefined;
    const message = `model ${m.name} (${m.file}): ${(error as Error).message}`;
    await serialize(async () =>
      catalog.db
        .prepare(
          'insert into lake_models (name, error, error_at) values (?, ?, ?) on conflict do update set error = excluded.error, error_at = excluded.error_at',
        )
        .run(m.name, message, now()),
    );
    return { name: m.name, error: message };
  }
}
