/**
 * `tributary lake status|compact|expire|models refresh`: the lake's snapshots, files and models,
 * and its maintenance on command (the sink also runs it automatically). Safe while the sink runs:
 * every change commits through the catalog's write lock, and compaction gives up (changing
 * nothing) when the sink replaced a file it merged.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { ConfigError, TributaryError } from '../core/errors.ts';
import { LakeCatalog } from '../sinks/lake/lake-catalog.ts';
import { lakeMissing } from '../sinks/lake/lake-options.ts';
import { type LakeFlags, resolveLakeDir, writeOut } from './sql-command.ts';

function openCatalog(root: string): LakeCatalog {
  if (!existsSync(join(root, 'catalog.db'))) {
    const { message, hint } = lakeMissing(root);
    throw new TributaryError('LAKE_NOT_FOUND', message, { hint });
  }
  return new LakeCatalog(join(root, 'catalog.db'));
}

function withLakeFlags(command: Command): Command {
  return command
    .option('--lake <dir>', 'lake directory (default: the lake sink path, or <dataDir>/lake)')
    .option('--data-dir <dir>', 'data directory (default .tributary)')
    .option('--config <file>', 'config file')
    .option('--json', 'print JSON');
}

async function print(flags: { json?: boolean }, value: unknown, text: string): Promise<void> {
  await writeOut(flags.json ? `${JSON.stringify(value)}\n` : `${text}\n`);
}

/** `30m`, `24h`, `7d`, `0` → milliseconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text);
  if (!m)
    throw new ConfigError(`--older-than ${text}: not a duration`, { hint: 'e.g. 0, 90s, 30m, 24h, 7d' });
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] ?? 'ms']!;
  return Number(m[1]) * unit;
}

export function registerLake(program: Command): void {
  const lake = program.command('lake').description('The lake: status, compaction, expiry, gold models.');

  withLakeFlags(
    lake.command('status').description('Snapshots, live files per table and layer, models.'),
  ).action(async (flags: LakeFlags & { json?: boolean }) => {
    const root = resolveLakeDir(flags);
    const catalog = openCatalog(root);
    try {
      const s = catalog.currentSnapshot();
      const snapshots = catalog.snapshots();
      const tables = new Map<
        string,
        { layer: string; name: string; files: number; rows: number; bytes: number }
      >();
      for (const f of catalog.files(s)) {
        const key = `${f.layer}.${f.name}`;
        const t = tables.get(key) ?? { layer: f.layer, name: f.name, files: 0, rows: 0, bytes: 0 };
        t.files++;
        t.rows += f.rows;
        t.bytes += f.bytes;
        tables.set(key, t);
      }
      const models = catalog.db
        .prepare('select name, refreshed_at, error from lake_models order by name')
        .all();
      const report = {
        lake: root,
        snapshot: s,
        snapshots: snapshots.length,
        tables: [...tables.values()],
        models,
      };
      const lines = [
        `lake ${root}: snapshot ${s}, ${snapshots.length} retained`,
        ...[...tables.values()].map(
          (t) => `  ${t.layer}.${t.name}: ${t.files} files holding ${t.rows} rows, ${t.bytes} bytes`,
        ),
        ...(models as { name: string; error: string | null }[]).map(
          (m) => `  model ${m.name}: ${m.error ? `FAILED ${m.error}` : 'ok'}`,
        ),
      ];
      await print(flags, report, lines.join('\n'));
    } finally {
      catalog.close();
    }
  });

  withLakeFlags(lake.command('compact').description('Merge the small files of every table now.')).action(
    async (flags: LakeFlags & { json?: boolean }) => {
      const root = resolveLakeDir(flags);
      const catalog = openCatalog(root);
      const { DuckDBInstance, compact, removeOrphans } = await lakeEngine();
      const instance = await DuckDBInstance.create(':memory:', { threads: '2' });
      const connection = await instance.connect();
      try {
        const results = await compact(connection, catalog, root, { all: true });
        const orphans = removeOrphans(catalog, root);
        await print(
          flags,
          { compacted: results, orphansRemoved: orphans.length },
          results.length
            ? results.map((r) => `${r.layer}.${r.name}: ${r.before} files → ${r.after}`).join('\n')
            : 'nothing to compact',
        );
      } finally {
        connection.closeSync();
        instance.closeSync();
        catalog.close();
      }
    },
  );

  withLakeFlags(
    lake.command('expire').description('Expire old snapshots and delete the files only they needed.'),
  )
    .option(
      '--older-than <duration>',
      'expire snapshots committed before now minus this (0: all but the current)',
      '24h',
    )
    .action(async (flags: LakeFlags & { json?: boolean; olderThan: string }) => {
      const root = resolveLakeDir(flags);
      const catalog = openCatalog(root);
      try {
        const { expire } = await lakeEngine();
        const result = await expire(catalog, root, parseDuration(flags.olderThan));
        await print(flags, result, `expired ${result.snapshots} snapshots, deleted ${result.files} files`);
      } finally {
        catalog.close();
      }
    });

  const models = lake.command('models').description('Gold models (<lake>/models/*.sql).');
  withLakeFlags(models.command('refresh').description('Refresh every gold model now (or the named ones).'))
    .argument('[names...]', 'models to refresh (default all)')
    .option(
      '--timeout <seconds>',
      "stop a model's refresh after this long (it keeps its previous file)",
      '300',
    )
    .action(async (names: string[], flags: LakeFlags & { json?: boolean; timeout: string }) => {
      const timeout = Number(flags.timeout);
      if (!/^\d+(\.\d+)?$/.test(flags.timeout.trim()) || !(timeout > 0)) {
        throw new ConfigError(`--timeout ${flags.timeout}: not a number of seconds above 0`, {
          hint: 'e.g. --timeout 60',
        });
      }
      const root = resolveLakeDir(flags);
      const catalog = openCatalog(root);
      const { DuckDBInstance, loadModels, refreshModels } = await lakeEngine();
      const instance = await DuckDBInstance.create(':memory:', { threads: '2' });
      const connection = await instance.connect();
      try {
        const all = loadModels(join(root, 'models'));
        const unknown = names.filter((n) => !all.some((m) => m.name === n));
        if (unknown.length) {
          throw new ConfigError(`unknown lake model ${unknown.join(', ')}`, {
            hint: `models in ${join(root, 'models')}: ${all.map((m) => m.name).join(', ') || '(none)'}`,
          });
        }
        const chosen = names.length ? all.filter((m) => names.includes(m.name)) : all;
        const results = await refreshModels(connection, catalog, root, chosen, { timeoutMs: timeout * 1000 });
        await print(
          flags,
          results,
          results
            .map((r) => (r.error ? `${r.name}: FAILED ${r.error}` : `${r.name}: ${r.rows} rows`))
            .join('\n'),
        );
        if (results.some((r) => r.error)) process.exitCode = 1;
      } finally {
        connection.closeSync();
        instance.closeSync();
        catalog.close();
      }
    });
}

/** DuckDB and the lake's maintenance, loaded by the lake commands only (not by every command). */
async function lakeEngine() {
  const [{ DuckDBInstance }, maintenance, models] = await Promise.all([
    import('@duckdb/node-api'),
    import('../sinks/lake/lake-maintenance.ts'),
    import('../sinks/lake/lake-models.ts'),
  ]);
  return { DuckDBInstance, ...maintenance, ...models };
}
