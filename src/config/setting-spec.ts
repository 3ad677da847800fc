import { z } from 'zod';

/**
 * The shape of one setting (its path in the config file, environment variable, flag, type,
 * default and description) and the value schemas several settings share.
 */
export interface SettingSpec {
  /** Path in the config file, e.g. `source.slot`. */
  readonly path: string;
  readonly env?: string;
  /** The CLI flag (without value placeholder), e.g. `--slot`. */
  readonly flag?: string;
  readonly schema: z.ZodType;
  readonly default?: unknown;
  readonly description: string;
  readonly example?: string;
  /** Never shown in messages or logs (passwords, salts). */
  readonly secret?: boolean;
  /** An object whose keys are the user's (e.g. sink names): validated whole, not key by key. */
  readonly structured?: boolean;
  /**
   * The value may also be read from a file named by this flag or environment variable (a secret
   * kept out of the process list): the file's text, trimmed. Same precedence as the plain
   * flag and variable (a flag's file before the environment).
   */
  readonly fromFile?: { readonly flag: string; readonly env: string };
}

export const identifier = z.string().min(1).max(63);
export const tableList = z.union([z.array(z.string().min(1)), z.string()]).transform((v) =>
  typeof v === 'string'
    ? v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
    : v,
);
/** A list, or comma-separated text whose commas inside double quotes belong to a name. */
export const nameList = z.union([z.array(z.string().min(1)), z.string()]).transform((v) => {
  if (typeof v !== 'string') return v;
  const items: string[] = [];
  let current = '';
  let quoted = false;
  for (const ch of v) {
    if (ch === '"') quoted = !quoted;
    if (ch === ',' && !quoted) {
      items.push(current.trim());
      current = '';
    } else current += ch;
  }
  items.push(current.trim());
  return items.filter(Boolean);
});
export const operationList = tableList.pipe(z.array(z.enum(['c', 'u', 'd', 't'])));
export const positiveInt = z.coerce.number().int().positive();
export const bool = z
  .union([z.boolean(), z.enum(['true', 'false', '1', '0'])])
  .transform((v) => v === true || v === 'true' || v === '1');
