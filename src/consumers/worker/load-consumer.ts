/**
 * Loads a consumer module and checks its definition, with errors that name the consumer folder
 * and the bad field. Used by the worker and by `tributary dlq replay`.
 */
import { dirname, join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError } from '../../core/errors.ts';
import type { ConsumerDescription } from '../consumer-protocol.ts';
import { CONSUMER_DEFINITION, type ConsumerDefinition, type OffsetReset } from '../define-consumer.ts';
import { consumerModuleIn } from '../discovery.ts';
import { declarableEnvName } from '../replica-env.ts';
import type { TransactionalTarget } from '../transactional.ts';

/** A definition with every default applied. */
export interface ResolvedConsumer {
  readonly name: string;
  readonly module: string;
  readonly topics: readonly string[];
  readonly group: string;
  readonly replicas: ConsumerDescription['replicas'];
  readonly maxRecords: number;
  readonly maxWaitMs: number;
  readonly concurrency: number;
  readonly attempts: number;
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  readonly memoryMb: number;
  readonly env: readonly string[];
  readonly transactional: TransactionalTarget<unknown> | undefined;
  /** `undefined`: the supervisor's default (settings `consumers.failureThreshold|failureAction`). */
  readonly failure: { readonly maxConsecutiveDeadLetters?: number; readonly action?: 'pause' | 'continue' };
  /** `undefined`: the supervisor's default (setting `consumers.offsetReset`). */
  readonly offsetReset: OffsetReset | undefined;
  readonly handle: ConsumerDefinition<unknown, unknown>['handle'];
}

export function describeConsumer(c: ResolvedConsumer): ConsumerDescription {
  return { topics: c.topics, group: c.group, replicas: c.replicas, memoryMb: c.memoryMb, env: c.env };
}

/** The entry module of `<dir>/<name>` (index.ts, .mts, .cts, .js, .mjs or .cjs), or undefined. */
export function consumerModulePath(consumersDir: string, name: string): string | undefined {
  return consumerModuleIn(join(consumersDir, name));
}

/**
 * `importer`: how to import the module; the worker runs under `--import tsx` and uses `import()`;
 * the CLI, which only registered tsx's ESM hooks, passes `tsImport` (a `.ts` file outside an ESM
 * package would otherwise load as CommonJS and fail).
 */
export async function loadConsumer(
  name: string,
  module: string,
  importer: (url: string) => Promise<unknown> = (url) => import(url),
): Promise<ResolvedConsumer> {
  const where = `consumer ${JSON.stringify(name)} (${relative(process.cwd(), module) || module})`;
  let exports: { default?: unknown };
  try {
    exports = (await importer(pathToFileURL(module).href)) as { default?: unknown };
  } catch (error) {
    throw new ConfigError(`${where} failed to load: ${(error as Error)?.message ?? String(error)}`, {
      cause: error,
      hint: `fix the error in ${dirname(module)} (it is imported with tsx, TypeScript runs as is)`,
    });
  }
  let definition = exports.default;
  // A module compiled as CommonJS (a .ts file outside an ESM package) nests its default export.
  const nested = (definition as { default?: unknown } | undefined)?.default;
  if (nested !== undefined && !(definition as { topics?: unknown }).topics) definition = nested;
  return validateDefinition(name, module, definition, where);
}

export function validateDefinition(
  name: string,
  module: string,
  value: unknown,
  where = `consumer ${JSON.stringify(name)}`,
): ResolvedConsumer {
  const bad = (field: string, expected: string, got: unknown) =>
    new ConfigError(`${where}: ${field} must be ${expected}, got ${show(got)}`, {
      hint: 'see "Writing a consumer" in the README for the defineConsumer options',
    });
  if (value === null || typeof value !== 'object') {
    throw new ConfigError(`${where}: the module has no default export of defineConsumer({...})`, {
      hint: 'end the module with: export default defineConsumer({ topics: [...], handle(batch, ctx) {...} })',
    });
  }
  const d = value as Partial<ConsumerDefinition<unknown, unknown>> & { [CONSUMER_DEFINITION]?: true };
  if (!Array.isArray(d.topics) || d.topics.length === 0 || !d.topics.every((t) => typeof t === 'string' && t))
    throw bad('topics', 'a non-empty array of topic names', d.topics);
  if (typeof d.handle !== 'function')
    throw bad('handle', 'a function (batch, ctx) => Promise<void>', d.handle);
  if (d.group !== undefined && (typeof d.group !== 'string' || d.group === ''))
    throw bad('group', 'a non-empty string', d.group);
  const int = (field: string, v: unknown, fallback: number, min: number, max: number): number => {
    if (v === undefined) return fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
      throw bad(field, `an integer from ${min} to ${max}`, v);
    return v;
  };
  let replicas: ConsumerDescription['replicas'];
  if (d.replicas === undefined || typeof d.replicas === 'number') {
    const n = int('replicas', d.replicas, 1, 0, 256);
    replicas = { min: n, max: n, initial: n };
  } else if (typeof d.replicas === 'object' && d.replicas !== null) {
    const min = int('replicas.min', d.replicas.min, 1, 0, 256);
    const max = int('replicas.max', d.replicas.max, Math.max(min, 1), 1, 256);
    if (max < min) throw bad('replicas.max', `at least replicas.min (${min})`, max);
    replicas = { min, max, initial: Math.max(min, 1) };
  } else throw bad('replicas', 'a number or { min, max }', d.replicas);
  if (d.batch !== undefined && (typeof d.batch !== 'object' || d.batch === null))
    throw bad('batch', '{ maxRecords?, maxWaitMs? }', d.batch);
  if (d.retry !== undefined && (typeof d.retry !== 'object' || d.retry === null))
    throw bad('retry', '{ attempts?, initialDelayMs?, maxDelayMs? }', d.retry);
  const transactional = d.transactional as TransactionalTarget<unknown> | undefined;
  if (
    transactional !== undefined &&
    (typeof transactional !== 'object' || transactional === null || typeof transactional.open !== 'function')
  )
    throw bad('transactional', 'a target from postgresTarget(url) or sqliteTarget(file)', transactional);
  if (d.format !== undefined && d.format !== 'debezium' && d.format !== 'unwrap')
    throw bad('format', "'debezium' or 'unwrap'", d.format);
  if (d.failure !== undefined && (typeof d.failure !== 'object' || d.failure === null))
    throw bad('failure', "{ maxConsecutiveDeadLetters?, action?: 'pause' | 'continue' }", d.failure);
  if (d.failure?.action !== undefined && d.failure.action !== 'pause' && d.failure.action !== 'continue')
    throw bad('failure.action', "'pause' or 'continue'", d.failure.action);
  if (d.offsetReset !== undefined && !['fail', 'earliest', 'latest'].includes(d.offsetReset))
    throw bad('offsetReset', "'fail', 'earliest' or 'latest'", d.offsetReset);
  const maxConsecutiveDeadLetters =
    d.failure?.maxConsecutiveDeadLetters === undefined
      ? undefined
      : int('failure.maxConsecutiveDeadLetters', d.failure.maxConsecutiveDeadLetters, 0, 0, 1_000_000);
  const initialDelayMs = int('retry.initialDelayMs', d.retry?.initialDelayMs, 100, 0, 3_600_000);
  return {
    name,
    module,
    topics: [...d.topics],
    group: d.group ?? name,
    replicas,
    maxRecords: int('batch.maxRecords', d.batch?.maxRecords, 100, 1, 100_000),
    maxWaitMs: int('batch.maxWaitMs', d.batch?.maxWaitMs, 0, 0, 600_000),
    concurrency: int('concurrency', d.concurrency, 4, 1, 1024),
    attempts: int('retry.attempts', d.retry?.attempts, 3, 1, 1000),
    initialDelayMs,
    maxDelayMs: int(
      'retry.maxDelayMs',
      d.retry?.maxDelayMs,
      Math.max(10_000, initialDelayMs),
      initialDelayMs,
      86_400_000,
    ),
    memoryMb: int('memoryMb', d.memoryMb, 512, 32, 1_048_576),
    env: declaredEnv(d.env, bad),
    transactional,
    failure: {
      ...(maxConsecutiveDeadLetters !== undefined ? { maxConsecutiveDeadLetters } : {}),
      ...(d.failure?.action ? { action: d.failure.action } : {}),
    },
    offsetReset: d.offsetReset,
    handle: d.handle,
  };
}

function declaredEnv(
  value: unknown,
  bad: (field: string, expected: string, got: unknown) => Error,
): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((n) => typeof n === 'string'))
    throw bad('env', 'an array of environment variable names', value);
  for (const name of value as string[]) {
    const problem = declarableEnvName(name);
    if (problem) throw bad('env', `names the consumer may read; ${JSON.stringify(name)} ${problem}`, value);
  }
  return [...new Set(value as string[])].sort();
}

function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (typeof v === 'function') return 'a function';
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}
