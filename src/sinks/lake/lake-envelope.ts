/**
 * Reads a Debezium change envelope from its JSON text without building it: the spans of
 * `before` and `after` (handed to DuckDB as text, so every digit of an int8 or numeric is kept),
 * and `op`, the source's LSN, commit time, transaction id, schema and table. `JSON.parse` of every
 * record (and its garbage) was the largest part of the lake sink's CPU.
 *
 * Any key order and any JSON whitespace are read; a text that is not one JSON object is handed to
 * `JSON.parse`, so a malformed record fails with the same `SyntaxError` as before.
 */

/** What a value is, as far as a column's lake type is concerned (see `ColumnSet.observe`). */
export const Kind = {
  null: 0,
  boolean: 1,
  /** A JSON number whose value is a whole number below 2^63 in magnitude. */
  integer: 2,
  /** A whole number at or beyond 2^63 (`1e+100`). */
  hugeInteger: 3,
  fraction: 4,
  string: 5,
  /** `"NaN"`, `"Infinity"`, `"-Infinity"` (how floats' non-finite values arrive). */
  nonFinite: 6,
  nested: 7,
} as const;

/** The kind of the last value `skipValue` read. */
export let lastKind = 0;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** The index after the whitespace at `i`. */
export function skipSpace(s: string, i: number): number {
  for (;;) {
    const c = s.charCodeAt(i);
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return i;
    i++;
  }
}

/** The index after the JSON string opening at `i` (a `"`), or -1. */
export function skipString(s: string, i: number): number {
  let from = i + 1;
  for (;;) {
    const q = s.indexOf('"', from);
    if (q < 0) return -1;
    let b = q - 1;
    while (s.charCodeAt(b) === BACKSLASH) b--;
    if ((q - 1 - b) % 2 === 0) return q + 1;
    from = q + 1;
  }
}

/** The text of the JSON string spanning `[start, end)`, unescaped. */
export function stringAt(s: string, start: number, end: number): string {
  const inner = s.slice(start + 1, end - 1);
  return inner.includes('\\') ? (JSON.parse(s.slice(start, end)) as string) : inner;
}

function skipNested(s: string, i: number): number {
  let depth = 0;
  for (; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === QUOTE) {
      i = skipString(s, i) - 1;
      if (i < 0) return -1;
    } else if (c === 0x7b || c === 0x5b) depth++;
    else if (c === 0x7d || c === 0x5d) {
      if (--depth === 0) return i + 1;
    }
  }
  return -1;
}

function numberKind(n: number): number {
  if (!Number.isInteger(n)) return Number.isFinite(n) ? Kind.fraction : -1;
  return Math.abs(n) < 2 ** 63 ? Kind.integer : Kind.hugeInteger;
}

/**
 * The index after the JSON value at `i` (no whitespace before it), its kind in `lastKind`; -1
 * when it is not a value. Numbers are only checked as far as their kind needs.
 */
export function skipValue(s: string, i: number): number {
  const c = s.charCodeAt(i);
  if (c === QUOTE) {
    const end = skipString(s, i);
    const n = end - i;
    lastKind =
      (n === 5 && s.startsWith('"NaN"', i)) ||
      (n === 10 && s.startsWith('"Infinity"', i)) ||
      (n === 11 && s.startsWith('"-Infinity"', i))
        ? Kind.nonFinite
        : Kind.string;
    return end;
  }
  if (c === 0x7b || c === 0x5b) {
    lastKind = Kind.nested;
    return skipNested(s, i);
  }
  if (c === 0x6e) return literal(s, i, 'null', Kind.null);
  if (c === 0x74) return literal(s, i, 'true', Kind.boolean);
  if (c === 0x66) return literal(s, i, 'false', Kind.boolean);
  let j = c === 0x2d ? i + 1 : i;
  const digits = j;
  let dot = -1;
  let exponent = false;
  let wholeFraction = true;
  for (; j < s.length; j++) {
    const d = s.charCodeAt(j);
    if (d >= 0x30 && d <= 0x39) {
      if (dot >= 0 && d !== 0x30) wholeFraction = false;
    } else if (d === 0x2e && dot < 0 && !exponent) dot = j;
    else if (d === 0x65 || d === 0x45) exponent = true;
    else if (!((d === 0x2b || d === 0x2d) && exponent)) break;
  }
  if (j === digits) return -1;
  const intDigits = (dot < 0 ? j : dot) - digits;
  lastKind =
    exponent || (dot >= 0 && !wholeFraction) || intDigits > 18
      ? numberKind(Number(s.slice(i, j)))
      : Kind.integer;
  return lastKind < 0 ? -1 : j;
}

function literal(s: string, i: number, word: string, kind: number): number {
  lastKind = kind;
  return s.startsWith(word, i) ? i + word.length : -1;
}

/** One change envelope read from its text. Spans are `[start, end)` of the text; -1: absent. */
export interface EnvelopeSpans {
  /** The `before`/`after` object spans; -1 when the field is missing or null. */
  beforeStart: number;
  beforeEnd: number;
  afterStart: number;
  afterEnd: number;
  sourceStart: number;
  sourceEnd: number;
  transactionStart: number;
  transactionEnd: number;
  /** The `op` string, or undefined. */
  op: string | undefined;
}

/** Spans with nothing read yet (reused by `readEnvelope` for every record). */
export function emptySpans(): EnvelopeSpans {
  return {
    beforeStart: -1,
    beforeEnd: -1,
    afterStart: -1,
    afterEnd: -1,
    sourceStart: -1,
    sourceEnd: -1,
    transactionStart: -1,
    transactionEnd: -1,
    op: undefined,
  };
}

const TOP_FIELDS = ['"before"', '"after"', '"source"', '"transaction"', '"op"'] as const;

/**
 * The spans of `text`'s envelope fields, into `out` (reused: no allocation per record); false when
 * the text is JSON `null` (a tombstone) or not an object. Throws `SyntaxError` for a text that is
 * not JSON.
 */
export function readEnvelope(text: string, out: EnvelopeSpans): boolean {
  return (text.startsWith('{"before":') && readOurs(text, out)) || readAny(text, out);
}

/**
 * The layout the capture writes (debezium-encoder.ts): `{"before":…,"after":…,"source":{…},
 * "transaction":…,"op":"…",…}` with no whitespace, read from the fields after the row images: the
 * last `,"source":{` is the envelope's (a row image comes before it; what follows it holds no
 * object but the flat source and transaction). False when the text is laid out otherwise.
 */
function readOurs(text: string, out: EnvelopeSpans): boolean {
  let i = 10;
  if (text.startsWith('null,"after":', i)) {
    out.beforeStart = out.beforeEnd = -1;
    i += 4;
  } else {
    // A flat before image ends at the first `},"after":` (a `{` or `[` in it: read it in full).
    let end = text.indexOf('},"after":', i) + 1;
    if (end <= 0 || text.charCodeAt(i) !== 0x7b || nests(text, i + 1, end)) end = skipValue(text, i);
    if (end < 0 || text.charCodeAt(i) !== 0x7b) return false;
    out.beforeStart = i;
    out.beforeEnd = i = end;
  }
  if (!text.startsWith(',"after":', i)) return false;
  i += 9;
  // The first `,"source":{` after a flat row image is the envelope's; else the last one is.
  let source = text.indexOf(',"source":{', i);
  if (source >= 0 && nests(text, i + 1, source)) source = text.lastIndexOf(',"source":{');
  if (source < 0) return false;
  const transaction = text.indexOf('},"transaction":', source);
  if (transaction < 0) return false;
  const op = text.indexOf(',"op":"', transaction);
  if (op < 0) return false;
  const opEnd = text.indexOf('"', op + 7);
  if (opEnd < 0 || text.charCodeAt(opEnd - 1) === BACKSLASH) return false;
  if (i + 4 === source && text.startsWith('null', i)) {
    out.afterStart = out.afterEnd = -1;
  } else if (text.charCodeAt(i) === 0x7b && text.charCodeAt(source - 1) === 0x7d) {
    out.afterStart = i;
    out.afterEnd = source;
  } else {
    return false;
  }
  out.sourceStart = source + 10;
  out.sourceEnd = transaction + 1;
  const t = transaction + 16;
  if (op === t + 4 && text.startsWith('null', t)) {
    out.transactionStart = out.transactionEnd = -1;
  } else if (text.charCodeAt(t) === 0x7b && text.charCodeAt(op - 1) === 0x7d) {
    out.transactionStart = t;
    out.transactionEnd = op;
  } else {
    return false;
  }
  out.op = text.slice(op + 7, opEnd);
  return true;
}

/** Whether `[from, to)` of `text` holds a `{` or `[` (a nested value, or one inside a string). */
function nests(text: string, from: number, to: number): boolean {
  const brace = text.indexOf('{', from);
  const bracket = text.indexOf('[', from);
  return (brace >= 0 && brace < to) || (bracket >= 0 && bracket < to);
}

/** Any envelope, field by field. */
function readAny(text: string, out: EnvelopeSpans): boolean {
  out.beforeStart = out.afterStart = out.sourceStart = out.transactionStart = -1;
  out.beforeEnd = out.afterEnd = out.sourceEnd = out.transactionEnd = -1;
  out.op = undefined;
  let i = skipSpace(text, 0);
  if (text.charCodeAt(i) !== 0x7b) return notObject(text);
  i = skipSpace(text, i + 1);
  if (text.charCodeAt(i) === 0x7d) return end(text, i + 1);
  for (;;) {
    if (text.charCodeAt(i) !== QUOTE) return malformed(text);
    const keyEnd = skipString(text, i);
    if (keyEnd < 0) return malformed(text);
    let field = -1;
    for (let f = 0; f < TOP_FIELDS.length; f++) {
      const name = TOP_FIELDS[f]!;
      if (keyEnd - i === name.length && text.startsWith(name, i)) field = f;
    }
    i = skipSpace(text, keyEnd);
    if (text.charCodeAt(i) !== 0x3a) return malformed(text);
    const start = skipSpace(text, i + 1);
    const stop = skipValue(text, start);
    if (stop < 0) return malformed(text);
    const isNull = lastKind === Kind.null;
    if (field === 0 && !isNull) {
      out.beforeStart = start;
      out.beforeEnd = stop;
    } else if (field === 1 && !isNull) {
      out.afterStart = start;
      out.afterEnd = stop;
    } else if (field === 2 && lastKind === Kind.nested) {
      out.sourceStart = start;
      out.sourceEnd = stop;
    } else if (field === 3 && lastKind === Kind.nested) {
      out.transactionStart = start;
      out.transactionEnd = stop;
    } else if (field === 4 && lastKind !== Kind.null) {
      out.op = lastKind === Kind.string ? stringAt(text, start, stop) : text.slice(start, stop);
    }
    i = skipSpace(text, stop);
    const c = text.charCodeAt(i);
    if (c === 0x7d) return end(text, i + 1);
    if (c !== 0x2c) return malformed(text);
    i = skipSpace(text, i + 1);
  }
}

function end(text: string, i: number): boolean {
  if (skipSpace(text, i) !== text.length) return malformed(text);
  return true;
}

/** A text that is not an object: skipped when it is JSON (a tombstone), else its SyntaxError. */
function notObject(text: string): false {
  JSON.parse(text);
  return false;
}

function malformed(text: string): never {
  JSON.parse(text); // throws the SyntaxError naming the fault
  throw new SyntaxError('lake: a change envelope could not be read');
}

/**
 * The raw text of field `key` of the flat object spanning `[start, end)` of `s`, or undefined when
 * it is absent. `key` is the field's name and closing quote (`lsn"`): an `indexOf` from a rarer
 * first character than `"` is faster. In valid JSON `,"lsn":` or `{"lsn":` occurs in an object's
 * text only as that object's key (a quote inside a string is escaped).
 */
export function fieldText(s: string, start: number, end: number, key: string): string | undefined {
  const from = fieldAt(s, start, end, key);
  if (from < 0) return undefined;
  const to = skipValue(s, from);
  return to < 0 ? undefined : s.slice(from, to);
}

/** Where the value of field `key` (see `fieldText`) starts, or -1. */
export function fieldAt(s: string, start: number, end: number, key: string): number {
  let at = s.indexOf(key, start + 1);
  while (at > 0 && at < end) {
    if (s.charCodeAt(at - 1) === QUOTE) {
      const before = s.charCodeAt(skipSpaceBack(s, at - 2));
      const colon = skipSpace(s, at + key.length);
      if ((before === 0x2c || before === 0x7b) && s.charCodeAt(colon) === 0x3a)
        return skipSpace(s, colon + 1);
    }
    at = s.indexOf(key, at + 1);
  }
  return -1;
}

function skipSpaceBack(s: string, i: number): number {
  for (;;) {
    const c = s.charCodeAt(i);
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return i;
    i--;
  }
}
