/**
 * The options every sink accepts (`sinks.<name>.*` besides the kind's own) and their check, with
 * errors that name the field path (`sinks.orders-view.batchSize`).
 */
import { z } from 'zod';
import { ConfigError } from '../core/errors.ts';
import type { CommonSinkOptions, SinkEnvironment, SinkKind } from './sink.ts';

const replicas = z.union([
  z.number().int().min(0).max(256),
  z.object({ min: z.number().int().min(0).max(256), max: z.number().int().min(1).max(256) }).strict(),
]);

export const COMMON_SINK_OPTIONS = z.object({
  kind: z.string().min(1),
  tables: z.array(z.string().min(1)).min(1).optional(),
  topics: z.array(z.string().min(1)).min(1).optional(),
  replicas: replicas.optional(),
  batchSize: z.number().int().min(1).max(100_000).optional(),
  retryAttempts: z.number().int().min(1).max(1000).optional(),
  memoryMb: z.number().int().min(32).optional(),
  enabled: z.boolean().optional(),
});

const COMMON_KEYS = new Set(Object.keys(COMMON_SINK_OPTIONS.shape));

/** A sink as configured: its common options, its kind's own options (parsed), where it reads. */
export interface SinkSpec {
  readonly name: string;
  readonly common: CommonSinkOptions;
  /** The kind's own options, parsed by its schema (plain JSON: it is written into the module). */
  readonly options: unknown;
  readonly topics: readonly string[];
}

/** Validates `sinks.<name>` against the common options and the kind's schema. */
export function parseSinkSpec(
  name: string,
  raw: unknown,
  kind: SinkKind<unknown>,
  env: Pick<SinkEnvironment, 'topicPrefix'>,
): SinkSpec {
  const where = `sinks.${name}`;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError(`${where} must be an object with a "kind"`, {
      hint: 'e.g. "sinks": { "orders-view": { "kind": "table", "tables": ["public.orders"], ... } }',
    });
  }
  const entries = Object.entries(raw as Record<string, unknown>);
  const common = zodParse(
    COMMON_SINK_OPTIONS,
    Object.fromEntries(entries.filter(([k]) => COMMON_KEYS.has(k))),
    where,
  );
  const options = zodParse(
    kind.options,
    Object.fromEntries(entries.filter(([k]) => !COMMON_KEYS.has(k))),
    where,
  );
  if (common.tables && common.topics) {
    throw new ConfigError(`${where}: give "tables" or "topics", not both`);
  }
  const tables = common.tables ?? (common.topics ? undefined : kind.defaultTables?.(options));
  const topics = common.topics ?? tables?.map((t) => `${env.topicPrefix}.${qualifyTable(t)}`);
  if (!topics || topics.length === 0) {
    throw new ConfigError(`${where}: no tables to read`, {
      hint: `add "tables": ["public.<table>"] to ${where}`,
    });
  }
  return { name, common, options, topics };
}

/** `orders` → `public.orders`; quoted names keep their quotes out of the topic. */
export function qualifyTable(table: string): string {
  const parts = table.split('.').map((p) => p.replace(/^"(.*)"$/, '$1'));
  return parts.length === 1 ? `public.${parts[0]}` : parts.join('.');
}

/** Parses with `schema`; an error names the first bad field as `<where>.<path>`. */
export function zodParse<T>(schema: z.ZodType<T>, value: unknown, where: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const path = issue?.path.length ? `${where}.${issue.path.join('.')}` : where;
  const allowed =
    issue && 'values' in issue ? ` (allowed: ${(issue as { values: unknown[] }).values.join(', ')})` : '';
  const unknownKeys =
    issue?.code === 'unrecognized_keys' ? ` (${(issue as { keys: string[] }).keys.join(', ')})` : '';
  throw new ConfigError(`${path}: ${issue?.message ?? 'invalid'}${allowed}${unknownKeys}`, {
    hint: 'see docs/sinks.md for the options of each sink kind',
  });
}
