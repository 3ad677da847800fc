import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError } from '../core/errors.ts';
import { SETTINGS, type SettingSpec, type TributaryConfig } from './config-schema.ts';
import { jsonErrorPosition } from './json-error-position.ts';

export const DEFAULT_CONFIG_FILE = 'tributary.config.json';

export interface LoadOptions {
  /** Values from CLI flags, keyed by setting path. `undefined` = not given. */
  readonly flags?: Readonly<Record<string, unknown>>;
  readonly env?: NodeJS.ProcessEnv;
  /** Explicit config file; otherwise `tributary.config.json` in `cwd` if it exists. */
  readonly file?: string;
  readonly cwd?: string;
}

/** Builds the configuration from defaults < config file < environment < flags, validating each value. */
export function loadConfig(options: LoadOptions = {}): TributaryConfig {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const fileValues = readConfigFile(options.file, cwd);
  const known = new Set(SETTINGS.map((s) => s.path));
  const structured = new Set(SETTINGS.filter((s) => s.structured).map((s) => s.path));
  for (const path of flatten(fileValues.values, '', structured)) {
    if (!known.has(path) && !SETTINGS.some((s) => s.path.startsWith(`${path}.`))) {
      throw new ConfigError(`unknown setting ${path} in ${fileValues.file}`, {
        hint: `known settings: ${[...known].join(', ')}`,
      });
    }
  }
  const config: Record<string, unknown> = {};
  for (const spec of SETTINGS) {
    const candidates: [string, unknown][] = [
      ['flag', options.flags?.[spec.path]],
      ['flag-file', secretFile(spec.fromFile?.flag, options.flags?.[`${spec.path}File`], cwd)],
      ['env', spec.env ? env[spec.env] : undefined],
      ['env-file', secretFile(spec.fromFile?.env, spec.fromFile ? env[spec.fromFile.env] : undefined, cwd)],
      ['file', get(fileValues.values, spec.path)],
    ];
    const found = candidates.find(([, v]) => v !== undefined && v !== '');
    if (!found) {
      if (spec.default !== undefined) set(config, spec.path, structuredClone(spec.default));
      else ensureParents(config, spec.path);
      continue;
    }
    set(config, spec.path, validate(spec, found[1], describeOrigin(found[0], spec, fileValues.file)));
  }
  return config as unknown as TributaryConfig;
}

/** The trimmed text of the file a `--source-file`-like flag or variable names, or undefined. */
function secretFile(origin: string | undefined, path: unknown, cwd: string): string | undefined {
  if (origin === undefined || typeof path !== 'string' || path === '') return undefined;
  try {
    return readFileSync(resolve(cwd, path), 'utf8').trim();
  } catch (cause) {
    throw new ConfigError(`cannot read ${origin} ${path}: ${(cause as Error).message}`, {
      cause,
      hint: `${origin} names a file holding the secret (readable by this user only: chmod 600)`,
    });
  }
}

function describeOrigin(kind: string, spec: SettingSpec, file: string | undefined): string {
  if (kind === 'flag') return `flag ${spec.flag}`;
  if (kind === 'flag-file') return `the file of ${spec.fromFile?.flag}`;
  if (kind === 'env-file') return `the file of ${spec.fromFile?.env}`;
  if (kind === 'env') return `environment variable ${spec.env}`;
  return `${spec.path} in ${file}`;
}

function validate(spec: SettingSpec, value: unknown, origin: string): unknown {
  const result = spec.schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const allowed =
    'values' in (issue ?? {}) ? ` (allowed: ${(issue as { values: unknown[] }).values.join(', ')})` : '';
  const shown = spec.path === 'source.url' || spec.secret ? '' : ` ${JSON.stringify(value)}`;
  throw new ConfigError(`invalid value${shown} for ${origin}: ${issue?.message ?? 'invalid'}${allowed}`, {
    hint: `${spec.path}: ${spec.description}`,
  });
}

function readConfigFile(
  file: string | undefined,
  cwd: string,
): { file?: string; values: Record<string, unknown> } {
  const path = file ? resolve(cwd, file) : resolve(cwd, DEFAULT_CONFIG_FILE);
  if (!existsSync(path)) {
    if (file) throw new ConfigError(`config file not found: ${path}`, { hint: 'check --config' });
    return { values: {} };
  }
  let parsed: unknown;
  const text = readFileSync(path, 'utf8');
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    const where = jsonErrorPosition(text);
    const reason = (cause as Error).message
      .replace(/ in JSON at position \d+.*$/s, '')
      .replace(/, ".*" is not valid JSON$/s, '');
    throw new ConfigError(
      `config file ${path} is not valid JSON${where ? ` at line ${where.line}, column ${where.column}` : ''}: ${reason}`,
      {
        cause,
        ...(where
          ? {
              hint: `line ${where.line} reads: ${where.lineText.trim()} (often a comma or quote is missing just before the column, or there is one too many)`,
            }
          : {}),
      },
    );
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(`config file ${path} must hold a JSON object`);
  }
  return { file: path, values: parsed as Record<string, unknown> };
}

/** Setting paths in a config file; a structured setting is one path, whatever it holds. */
function flatten(values: Record<string, unknown>, prefix: string, structured: ReadonlySet<string>): string[] {
  return Object.entries(values).flatMap(([k, v]) =>
    typeof v === 'object' && v !== null && !Array.isArray(v) && !structured.has(`${prefix}${k}`)
      ? flatten(v as Record<string, unknown>, `${prefix}${k}.`, structured)
      : [`${prefix}${k}`],
  );
}

function get(values: Record<string, unknown>, path: string): unknown {
  let current: unknown = values;
  for (const part of path.split('.')) {
    if (typeof current !== 'object' || current === null) return undefined;
    current = (current as Record<string, unknown>)[part];
  }
  return current;
}

function ensureParents(target: Record<string, unknown>, path: string): void {
  let current = target;
  for (const part of path.split('.').slice(0, -1)) {
    current[part] ??= {};
    current = current[part] as Record<string, unknown>;
  }
}

function set(target: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let current = target;
  for (const part of parts.slice(0, -1)) {
    current[part] ??= {};
    current = current[part] as Record<string, unknown>;
  }
  current[parts[parts.length - 1]!] = value;
}
