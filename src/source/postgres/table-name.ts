import { ConfigError } from '../../core/errors.ts';

export interface TableName {
  readonly schema: string;
  readonly table: string;
}

/**
 * Parses `schema.table`, `table` (schema `public`) or quoted parts such as `"My Schema"."Order"`,
 * the way PostgreSQL reads them: unquoted parts fold to lower case, quoted parts keep their case
 * and may contain dots; `""` inside quotes is one quote.
 */
export function parseTableName(text: string): TableName {
  const parts = splitQualifiedName(text, (why) => bad(text, why));
  if (parts.length === 1) return { schema: 'public', table: parts[0]! };
  if (parts.length === 2) return { schema: parts[0]!, table: parts[1]! };
  throw bad(text, 'expected schema.table');
}

/**
 * Splits a dotted name into its parts as PostgreSQL reads them (unquoted parts fold to lower
 * case, quoted parts keep case and dots); `invalid` builds the error for a malformed name.
 */
export function splitQualifiedName(text: string, invalid: (why: string) => Error): string[] {
  const parts: string[] = [];
  let i = 0;
  const s = text.trim();
  while (i <= s.length) {
    if (s[i] === '"') {
      let part = '';
      i++;
      for (;;) {
        if (i >= s.length) throw invalid('unterminated quote');
        if (s[i] === '"') {
          if (s[i + 1] === '"') {
            part += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        part += s[i++];
      }
      parts.push(part);
    } else {
      const end = s.indexOf('.', i);
      const raw = end === -1 ? s.slice(i) : s.slice(i, end);
      if (raw.length === 0 || raw.includes('"')) throw invalid('empty or malformed part');
      parts.push(raw.toLowerCase());
      i = end === -1 ? s.length : end;
    }
    if (i >= s.length) break;
    if (s[i] !== '.') throw invalid(`unexpected ${JSON.stringify(s[i])}`);
    i++;
  }
  return parts;
}

/** Splits a comma-separated list, keeping commas inside quotes. */
export function parseTableList(text: string): TableName[] {
  const items: string[] = [];
  let current = '';
  let quoted = false;
  for (const ch of text) {
    if (ch === '"') quoted = !quoted;
    if (ch === ',' && !quoted) {
      items.push(current);
      current = '';
    } else current += ch;
  }
  items.push(current);
  return items.filter((item) => item.trim() !== '').map(parseTableName);
}

export function formatTableName(name: TableName): string {
  const part = (p: string) => (/^[a-z_][a-z0-9_$]*$/.test(p) ? p : `"${p.replaceAll('"', '""')}"`);
  return `${part(name.schema)}.${part(name.table)}`;
}

function bad(text: string, why: string): ConfigError {
  return new ConfigError(`invalid table name ${JSON.stringify(text)}: ${why}`, {
    hint: 'write schema.table, e.g. public.orders, or "My Schema"."Order" for mixed case',
  });
}

/** Slot names are restricted by PostgreSQL: lower-case letters, digits and underscores, ≤ 63. */
export function checkSlotName(name: string): void {
  if (!/^[a-z0-9_]{1,63}$/.test(name)) {
    throw new ConfigError(`invalid slot name ${JSON.stringify(name)}`, {
      hint: 'a replication slot name may contain only lower-case letters, digits and underscores (at most 63)',
    });
  }
}

export function checkPublicationName(name: string): void {
  if (name.length === 0 || name.length > 63 || name.includes('\0')) {
    throw new ConfigError(`invalid publication name ${JSON.stringify(name)}`, {
      hint: 'use 1 to 63 characters, e.g. tributary',
    });
  }
}
