/**
 * A JSON reader for change records that builds only what a sink uses, with exact values: the
 * values of a Debezium envelope's `before`, `after` and `op`, and `schema`, `table` and `lsn` of
 * its `source`; the other members (`source`'s versions and times, `transaction`, `ts_*`) are
 * passed over without building them. `JSON.parse` of the whole envelope cost ~30 % of the `table`
 * sink's CPU, and every record took `parseExactJson`'s slow path (a second pass and a walk of the
 * result) since `ts_ns` is beyond 2^53 in every record the capture writes.
 *
 * Values are those of `parseExactJson`: integers of 16 digits or more outside the safe range are
 * `bigint`s, every other number is what `JSON.parse` gives, strings with escapes are decoded by
 * `JSON.parse`. Text that is not JSON throws a `SyntaxError`, as `JSON.parse` does, except that
 * raw control characters inside strings are taken as they are, and that inside the members
 * passed over only the nesting and the ends of strings are checked.
 */

/** The envelope members a sink reads. */
export interface EnvelopeParts {
  readonly before: unknown;
  readonly after: unknown;
  readonly op: unknown;
  /** `source.schema`, `source.table`, `source.lsn` (`undefined` when absent). */
  readonly schema: unknown;
  readonly table: unknown;
  readonly lsn: unknown;
  /** Set when the text is not an envelope (its first member is not `before`): the whole value. */
  readonly whole?: unknown;
}

/**
 * Reads `json`: a Debezium envelope (first member `before`, as the capture writes it) as its
 * parts, any other JSON value whole (`whole`: the unwrapped format, messages).
 */
export function readEnvelope(json: string): EnvelopeParts {
  const reader = new ExactJsonReader(json);
  reader.space();
  if (!json.startsWith('{"before":', reader.at)) {
    const whole = reader.value();
    reader.end();
    const none = undefined;
    return { before: none, after: none, op: none, schema: none, table: none, lsn: none, whole };
  }
  return reader.envelope();
}

/** `JSON.parse` of `json` with exact integers (the values of `parseExactJson`). */
export function readExactJson(json: string): unknown {
  const reader = new ExactJsonReader(json);
  const value = reader.value();
  reader.end();
  return value;
}

/**
 * Member names remembered by index (`name`): those of objects (the rows) from 0, the envelope's
 * from `ENVELOPE_NAMES`, its `source`'s from `SOURCE_NAMES`.
 */
const NAMES = 96;
const ENVELOPE_NAMES = 64;
const SOURCE_NAMES = 80;
const names: (string | undefined)[] = new Array(NAMES).fill(undefined);

/** The index of the next member name in a range ending at `end` (`NAMES`: not remembered). */
function nextName(index: number, end: number): number {
  return index + 1 < end ? index + 1 : NAMES;
}

/** Reads one text, forward only. */
class ExactJsonReader {
  readonly text: string;
  at = 0;
  /** The first backslash at or after the last string's start (-1: none): linear over the text. */
  backslash: number;

  constructor(text: string) {
    this.text = text;
    this.backslash = text.indexOf('\\');
  }

  envelope(): EnvelopeParts {
    let before: unknown;
    let after: unknown;
    let op: unknown;
    let schema: unknown;
    let table: unknown;
    let lsn: unknown;
    this.at++;
    for (let member = ENVELOPE_NAMES; ; member = nextName(member, SOURCE_NAMES)) {
      this.space();
      const name = this.name(member);
      this.colon();
      if (name === 'before') before = this.value();
      else if (name === 'after') after = this.value();
      else if (name === 'op') op = this.value();
      else if (name === 'source' && this.text.charCodeAt(this.at) === 123) {
        this.at++;
        this.space();
        if (this.text.charCodeAt(this.at) === 125) this.at++;
        else {
          let field = SOURCE_NAMES;
          do {
            this.space();
            const name = this.name(field);
            field = nextName(field, NAMES);
            this.colon();
            if (name === 'schema') schema = this.value();
            else if (name === 'table') table = this.value();
            else if (name === 'lsn') lsn = this.value();
            else this.skip();
          } while (this.next(125));
        }
      } else this.skip();
      if (!this.next(125)) break;
    }
    this.end();
    return { before, after, op, schema, table, lsn };
  }

  end(): void {
    this.space();
    if (this.at !== this.text.length) this.fail();
  }

  fail(): never {
    const at = this.at;
    throw new SyntaxError(
      at >= this.text.length
        ? 'Unexpected end of JSON input'
        : `Unexpected token ${JSON.stringify(this.text[at])} in JSON at position ${at}`,
    );
  }

  space(): void {
    const s = this.text;
    let i = this.at;
    let c = s.charCodeAt(i);
    while (c === 32 || c === 10 || c === 13 || c === 9) c = s.charCodeAt(++i);
    this.at = i;
  }

  colon(): void {
    this.space();
    if (this.text.charCodeAt(this.at) !== 58) this.fail();
    this.at++;
    this.space();
  }

  /** After a member or element: `true` at a comma, `false` at `close` (both consumed). */
  next(close: number): boolean {
    this.space();
    const c = this.text.charCodeAt(this.at);
    if (c !== 44 && c !== close) this.fail();
    this.at++;
    return c === 44;
  }

  value(): unknown {
    const c = this.text.charCodeAt(this.at);
    if (c === 34) return this.string();
    if (c === 123) return this.object();
    if (c === 91) return this.array();
    if (c === 45 || (c >= 48 && c <= 57)) return this.number();
    return this.literal();
  }

  object(): { [name: string]: unknown } {
    const o: { [name: string]: unknown } = {};
    this.at++;
    this.space();
    if (this.text.charCodeAt(this.at) === 125) {
      this.at++;
      return o;
    }
    let member = 0;
    do {
      this.space();
      const name = this.name(member);
      member = nextName(member, ENVELOPE_NAMES);
      this.colon();
      const v = this.value();
      if (name === '__proto__') {
        Object.defineProperty(o, name, { value: v, enumerable: true, writable: true, configurable: true });
      } else o[name] = v;
    } while (this.next(125));
    return o;
  }

  array(): unknown[] {
    const a: unknown[] = [];
    this.at++;
    this.space();
    if (this.text.charCodeAt(this.at) === 93) {
      this.at++;
      return a;
    }
    do {
      this.space();
      a.push(this.value());
    } while (this.next(93));
    return a;
  }

  /**
   * A member name: the name read at the same member index before when the text there is that
   * name (the records of a batch repeat their names in the same order: no new string, and the
   * one already used as a property key), else the string read.
   */
  name(index: number): string {
    const s = this.text;
    const known = index < NAMES ? names[index] : undefined;
    const from = this.at + 1;
    if (known !== undefined && s.startsWith(known, from) && s.charCodeAt(from + known.length) === 34) {
      if (s.charCodeAt(this.at) !== 34) this.fail();
      this.at = from + known.length + 1;
      return known;
    }
    const name = this.string();
    // A name holding a backslash could match text where the backslash starts an escape.
    if (index < NAMES && name.indexOf('\\') === -1) names[index] = name;
    return name;
  }

  /** The string whose opening quote is at `at`, decoded. */
  string(): string {
    const s = this.text;
    if (s.charCodeAt(this.at) !== 34) this.fail();
    const from = this.at + 1;
    let close = s.indexOf('"', from);
    if (close === -1) this.fail();
    if (this.backslash !== -1 && this.backslash < from) this.backslash = s.indexOf('\\', from);
    if (this.backslash === -1 || this.backslash > close) {
      this.at = close + 1;
      return s.slice(from, close);
    }
    // Escapes: the closing quote is the first one no backslash escapes; JSON.parse decodes.
    while (this.escaped(close)) {
      close = s.indexOf('"', close + 1);
      if (close === -1) this.fail();
    }
    this.at = close + 1;
    return JSON.parse(s.slice(from - 1, close + 1)) as string;
  }

  escaped(quote: number): boolean {
    let n = 0;
    while (this.text.charCodeAt(quote - 1 - n) === 92) n++;
    return n % 2 === 1;
  }

  /** The number at `at`: short integers summed digit by digit, others `Number` or `BigInt` of the text. */
  number(): number | bigint {
    const s = this.text;
    const from = this.at;
    let i = from;
    let c = s.charCodeAt(i);
    const negative = c === 45;
    if (negative) c = s.charCodeAt(++i);
    const first = i;
    let n = 0;
    while (c >= 48 && c <= 57) {
      n = n * 10 + (c - 48);
      c = s.charCodeAt(++i);
    }
    const digits = i - first;
    if (digits === 0 || (digits > 1 && s.charCodeAt(first) === 48)) {
      this.at = i;
      this.fail();
    }
    if (c !== 46 && c !== 101 && c !== 69) {
      this.at = i;
      if (digits < 16) return negative ? -n : n;
      const exact = Number(s.slice(from, i));
      return Number.isSafeInteger(exact) ? exact : BigInt(s.slice(from, i));
    }
    if (c === 46) {
      c = s.charCodeAt(++i);
      if (!(c >= 48 && c <= 57)) {
        this.at = i;
        this.fail();
      }
      while (c >= 48 && c <= 57) c = s.charCodeAt(++i);
    }
    if (c === 101 || c === 69) {
      c = s.charCodeAt(++i);
      if (c === 43 || c === 45) c = s.charCodeAt(++i);
      if (!(c >= 48 && c <= 57)) {
        this.at = i;
        this.fail();
      }
      while (c >= 48 && c <= 57) c = s.charCodeAt(++i);
    }
    this.at = i;
    return Number(s.slice(from, i));
  }

  literal(): boolean | null {
    const s = this.text;
    if (s.startsWith('null', this.at)) {
      this.at += 4;
      return null;
    }
    if (s.startsWith('true', this.at)) {
      this.at += 4;
      return true;
    }
    if (s.startsWith('false', this.at)) {
      this.at += 5;
      return false;
    }
    return this.fail();
  }

  /** Passes over the value at `at` without building it. */
  skip(): void {
    const s = this.text;
    const c = s.charCodeAt(this.at);
    if (c === 34) {
      this.skipString();
      return;
    }
    if (c !== 123 && c !== 91) {
      if (c === 45 || (c >= 48 && c <= 57)) this.skipNumber();
      else this.literal();
      return;
    }
    let depth = 0;
    for (;;) {
      const d = s.charCodeAt(this.at);
      if (d === 34) {
        this.skipString();
        continue;
      }
      this.at++;
      if (d === 123 || d === 91) depth++;
      else if (d === 125 || d === 93) {
        if (--depth === 0) return;
      } else if (Number.isNaN(d)) this.fail();
    }
  }

  /** Passes over a number's characters (checked only for being number characters). */
  skipNumber(): void {
    const s = this.text;
    let i = this.at;
    let c = s.charCodeAt(i);
    while ((c >= 48 && c <= 57) || c === 45 || c === 46 || c === 101 || c === 69 || c === 43)
      c = s.charCodeAt(++i);
    this.at = i;
  }

  skipString(): void {
    let close = this.text.indexOf('"', this.at + 1);
    while (close !== -1 && this.escaped(close)) close = this.text.indexOf('"', close + 1);
    if (close === -1) {
      this.at = this.text.length;
      this.fail();
    }
    this.at = close + 1;
  }
}
