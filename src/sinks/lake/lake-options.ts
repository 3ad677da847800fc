/**
 * The lake sink's options and where its files live (shared by the sink, its target and the
 * `sql`/`lake` commands).
 */
import { cpSync, existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import type { SinkEnvironment } from '../sink.ts';

export const LAKE_OPTIONS = z
  .object({
    /** The lake directory; default `<dataDir>/lake`. */
    path: z.string().min(1).optional(),
    /**
     * Merge a table's layer's files of one size class (powers of this, from 64 KiB) once it has
     * this many (lake-maintenance.ts `mergeSets`).
     */
    compactFiles: z.number().int().min(2).max(100_000).default(8),
    /** Snapshots older than this are expired (the current one is always kept). */
    snapshotRetentionHours: z.number().min(0).default(24),
    /** Bronze files of commit days older than this are removed; none by default. */
    bronzeRetentionDays: z.number().int().min(1).optional(),
    /** Gold models refresh after this many changes... */
    modelsRefreshChanges: z.number().int().min(1).default(10_000),
    /** ...or this long after the last refresh when there were changes. */
    modelsRefreshSeconds: z.number().min(1).default(60),
    /** A model's refresh is stopped (an error, its previous file kept) after this long. */
    modelsTimeoutSeconds: z.number().positive().default(300),
    /** A folder of `.sql` models copied into `<lake>/models` when that folder does not exist. */
    seedModels: z.string().optional(),
  })
  .strict();

export type LakeOptions = z.infer<typeof LAKE_OPTIONS>;

export function lakePath(options: { path?: string | undefined }, dataDir: string): string {
  return resolve(options.path ?? join(dataDir, 'lake'));
}

/** Creates the lake folder and its models (from `seedModels`) if they do not exist. */
export function prepareLakeDir(options: LakeOptions, env: SinkEnvironment): string {
  const root = lakePath(options, env.dataDir);
  mkdirSync(root, { recursive: true });
  const models = join(root, 'models');
  if (!existsSync(models)) {
    if (options.seedModels && existsSync(options.seedModels))
      cpSync(options.seedModels, models, { recursive: true });
    else mkdirSync(models, { recursive: true });
  }
  return root;
}

/** Why `<root>` cannot be queried yet, and what to do: no lake there, or no commit yet. */
export function lakeMissing(root: string): { message: string; hint: string } {
  return existsSync(root)
    ? {
        message: `the lake at ${root} has no commit yet: its sink has not written a first batch`,
        hint: 'see whether the lake sink runs and keeps up: `tributary consumers` and `tributary logs lake`',
      }
    : {
        message: `no lake at ${root}`,
        hint: 'run a lake sink first (`tributary up` writes <dataDir>/lake), or pass --lake <dir>',
      };
}
