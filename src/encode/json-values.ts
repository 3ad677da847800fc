/**
 * Column values from PostgreSQL's text output to JSON fragments, the way Debezium's PostgreSQL
 * connector represents them with decimal.handling.mode=string,
 * time.precision.mode=adaptive_time_microseconds, interval.handling.mode=string and
 * binary.handling.mode=base64. Numbers are copied digit for digit, never through a JS number.
 * docs/types.md lists every type with examples.
 */
import type { ColumnType } from '../core/change-event.ts';
import { TributaryError } from '../core/errors.ts';
import { type PgArray, parsePgArray } from './pg-array-literal.ts';
import {
  dateToEpochDays,
  intervalToIso,
  timestampToMicros,
  timestamptzToUtc,
  timeToMicros,
  timetzToUtc,
} from './pg-datetime.ts';

/** Turns one value's text form into serialized JSON. */
export type JsonConverter = (text: string) => string;

/** A value whose text does not have the form its type promises (or a misconfigured session). */
export class ValueConversionError extends TributaryError {
  constructor(typeName: string, options: { cause?: unknown } = {}) {
    super('VALUE_CONVERSION_FAILED', `cannot convert a value of type ${typeName} to JSON`, {
      ...options,
      hint: 'The replication session must run with DateStyle=ISO and IntervalStyle=postgres.',
    });
  }
}

/** Unchanged TOASTed value the database did not send (Debezium's unavailable.value.placeholder). */
export const UNAVAILABLE_VALUE_JSON = '"__debezium_unavailable_value"';

/** JSON string of any text. V8's JSON.stringify has a fast path for plain strings. */
export const jsonString: JsonConverter = (text) => JSON.stringify(text);

/** The text is already a valid JSON number (integer types print digits and an optional '-'). */
const verbatim: JsonConverter = (text) => text;

/** Digits only, so quoting needs no escaping; NaN/Infinity/-Infinity come out as the same strings. */
const quoted: JsonConverter = (text) => `"${text}"`;

const JSON_NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;

const float: JsonConverter = (text) => {
  // PostgreSQL >= 12 prints shortest round-trip text that already is JSON ("1e+100", "-0", "1.5e-07").
  if (JSON_NUMBER.test(text)) return text;
  if (text === 'NaN' || text === 'Infinity' || text === '-Infinity') return `"${text}"`;
  // Anything else ("+1", "1.", ".5"): a double holds every float4/float8 exactly; keep -0's sign.
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value)) throw new ValueConversionError('float');
  return Object.is(value, -0) ? '-0' : String(value);
};

const bool: JsonConverter = (text) => {
  if (text === 't') return 'true';
  if (text === 'f') return 'false';
  throw new ValueConversionError('bool');
};

/** bytea: hex output (`\x0a0b`) by default; the legacy escape output is decoded too. */
const bytea: JsonConverter = (text) => {
  if (text.startsWith('\\x')) return `"${Buffer.from(text.slice(2), 'hex').toString('base64')}"`;
  return `"${decodeEscapedBytea(text).toString('base64')}"`;
};

function decodeEscapedBytea(text: string): Buffer {
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c !== 0x5c) {
      bytes.push(c);
    } else if (text.charCodeAt(i + 1) === 0x5c) {
      bytes.push(0x5c);
      i++;
    } else {
      const octal = text.slice(i + 1, i + 4);
      if (!/^[0-3][0-7]{2}$/.test(octal)) throw new ValueConversionError('bytea');
      bytes.push(Number.parseInt(octal, 8));
      i += 3;
    }
  }
  return Buffer.from(bytes);
}

function wrap(type: string, convert: (text: string) => string, stringify: boolean): JsonConverter {
  return (text) => {
    let out: string;
    try {
      out = convert(text);
    } catch (error) {
      throw new ValueConversionError(type, { cause: error });
    }
    return stringify ? `"${out}"` : out;
  };
}

type Rule =
  | 'integer'
  | 'numeric'
  | 'float'
  | 'bool'
  | 'bytea'
  | 'json'
  | 'date'
  | 'time'
  | 'timetz'
  | 'timestamp'
  | 'timestamptz'
  | 'interval'
  | 'text';

/** Built-in types by OID (stable across installations); names as a fallback. */
const RULES_BY_OID = new Map<number, Rule>([
  [16, 'bool'],
  [17, 'bytea'],
  [20, 'integer'],
  [21, 'integer'],
  [23, 'integer'],
  [26, 'integer'],
  [114, 'json'],
  [700, 'float'],
  [701, 'float'],
  [1082, 'date'],
  [1083, 'time'],
  [1114, 'timestamp'],
  [1184, 'timestamptz'],
  [1186, 'interval'],
  [1266, 'timetz'],
  [1700, 'numeric'],
  [3802, 'json'],
]);

const RULES_BY_NAME = new Map<string, Rule>([
  ['bool', 'bool'],
  ['boolean', 'bool'],
  ['bytea', 'bytea'],
  ['int2', 'integer'],
  ['int4', 'integer'],
  ['int8', 'integer'],
  ['smallint', 'integer'],
  ['integer', 'integer'],
  ['bigint', 'integer'],
  ['oid', 'integer'],
  ['json', 'json'],
  ['jsonb', 'json'],
  ['float4', 'float'],
  ['float8', 'float'],
  ['real', 'float'],
  ['double precision', 'float'],
  ['date', 'date'],
  ['time', 'time'],
  ['time without time zone', 'time'],
  ['timetz', 'timetz'],
  ['time with time zone', 'timetz'],
  ['timestamp', 'timestamp'],
  ['timestamp without time zone', 'timestamp'],
  ['timestamptz', 'timestamptz'],
  ['timestamp with time zone', 'timestamptz'],
  ['interval', 'interval'],
  ['numeric', 'numeric'],
  ['decimal', 'numeric'],
]);

function ruleConverter(rule: Rule): JsonConverter {
  switch (rule) {
    case 'integer':
      return verbatim;
    case 'numeric':
      return quoted;
    case 'float':
      return float;
    case 'bool':
      return bool;
    case 'bytea':
      return bytea;
    case 'json':
    case 'text':
      return jsonString;
    case 'date':
      return wrap('date', dateToEpochDays, false);
    case 'time':
      return wrap('time', timeToMicros, false);
    case 'timetz':
      return wrap('timetz', timetzToUtc, true);
    case 'timestamp':
      return wrap('timestamp', timestampToMicros, false);
    case 'timestamptz':
      return wrap('timestamptz', timestamptzToUtc, true);
    case 'interval':
      return wrap('interval', intervalToIso, true);
  }
}

function arrayConverter(element: ColumnType, delimiter: string, typeName: string): JsonConverter {
  const convert = jsonConverter(element);
  const write = (items: PgArray): string => {
    let out = '[';
    for (const item of items) {
      if (out.length > 1) out += ',';
      out += item === null ? 'null' : typeof item === 'string' ? convert(item) : write(item);
    }
    return `${out}]`;
  };
  return (text) => {
    let items: PgArray;
    try {
      items = parsePgArray(text, delimiter);
    } catch (error) {
      throw new ValueConversionError(typeName, { cause: error });
    }
    return write(items);
  };
}

/**
 * The converter for a column type; build it once per column. Enums, domains over text-like
 * types and every type without a rule (uuid, inet, money, ranges, geometry...) become JSON strings.
 */
export function jsonConverter(type: ColumnType): JsonConverter {
  if (type.kind === 'array') return arrayConverter(type.element, type.delimiter, type.name);
  if (type.kind === 'enum') return jsonString;
  return ruleConverter(RULES_BY_OID.get(type.oid) ?? RULES_BY_NAME.get(type.name) ?? 'text');
}
