/**
 * Date/time values from PostgreSQL's text output (DateStyle=ISO, IntervalStyle=postgres) to
 * Debezium's representations. Integer arithmetic only: a timestamp is exact to the microsecond
 * over PostgreSQL's whole range (4713 BC to 294276 AD).
 */

export class DateTimeFormatError extends Error {
  constructor(type: string) {
    // The value itself stays out of the message: it is row data.
    super(`unexpected ${type} text (is the session DateStyle=ISO and IntervalStyle=postgres?)`);
    this.name = 'DateTimeFormatError';
  }
}

// The scanners below share one cursor; they are synchronous and never re-entered.
let at = 0;
let failed = false;

/** Reads exactly `count` digits at the cursor. */
function fixed(text: string, count: number): number {
  let value = 0;
  for (let end = at + count; at < end; at++) {
    const d = text.charCodeAt(at) - 48;
    if (!(d >= 0 && d <= 9)) failed = true;
    value = value * 10 + d;
  }
  return value;
}

/** Reads one or more digits at the cursor. */
function run(text: string): number {
  const start = at;
  let value = 0;
  for (let d = text.charCodeAt(at) - 48; d >= 0 && d <= 9; d = text.charCodeAt(++at) - 48)
    value = value * 10 + d;
  if (at === start) failed = true;
  return value;
}

function expect(text: string, code: number): void {
  if (text.charCodeAt(at) === code) at++;
  else failed = true;
}

/** Days from 1970-01-01 to a proleptic Gregorian date; `year` is astronomical (1 BC = 0). */
export function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1;
  return era * 146097 + yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy - 719468;
}

/** The inverse of daysFromCivil. */
export function civilFromDays(days: number): { year: number; month: number; day: number } {
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor(
    (doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365,
  );
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const month = mp < 10 ? mp + 3 : mp - 9;
  return {
    year: yoe + era * 400 + (month <= 2 ? 1 : 0),
    month,
    day: doy - Math.floor((153 * mp + 2) / 5) + 1,
  };
}

/** `YYYY-MM-DD` (year 4+ digits) at the cursor, as days since the epoch; BC is applied by the caller. */
function date(text: string): { year: number; month: number; day: number } {
  const year = run(text);
  expect(text, 0x2d);
  const month = fixed(text, 2);
  expect(text, 0x2d);
  const day = fixed(text, 2);
  return { year, month, day };
}

/** `HH:MM:SS[.ffffff]` at the cursor: seconds of the day, and the fraction digits as printed. */
let fraction = '';
function clock(text: string): number {
  const h = fixed(text, 2);
  expect(text, 0x3a);
  const m = fixed(text, 2);
  expect(text, 0x3a);
  const s = fixed(text, 2);
  fraction = '';
  if (text.charCodeAt(at) === 0x2e) {
    const start = ++at;
    run(text);
    fraction = text.slice(start, at);
  }
  return h * 3600 + m * 60 + s;
}

function fractionMicros(): number {
  return fraction === '' ? 0 : Number(fraction.slice(0, 6)) * 10 ** (6 - Math.min(fraction.length, 6));
}

/** `+HH[:MM[:SS]]` at the cursor, in seconds east of UTC. */
function offset(text: string): number {
  const sign = text.charCodeAt(at);
  if (sign !== 0x2b && sign !== 0x2d) failed = true;
  at++;
  let seconds = fixed(text, 2) * 3600;
  if (text.charCodeAt(at) === 0x3a) {
    at++;
    seconds += fixed(text, 2) * 60;
    if (text.charCodeAt(at) === 0x3a) {
      at++;
      seconds += fixed(text, 2);
    }
  }
  return sign === 0x2d ? -seconds : seconds;
}

/** Consumes a trailing ` BC` and checks the whole text was read. Returns true for BC. */
function era(text: string, type: string): boolean {
  let bc = false;
  if (at === text.length - 3 && text.endsWith(' BC')) {
    bc = true;
    at += 3;
  }
  if (failed || at !== text.length) throw new DateTimeFormatError(type);
  return bc;
}

function begin(): void {
  at = 0;
  failed = false;
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : `${n}`;
}

/** java.time's ISO year: at least 4 digits, '+' above 9999, '-' below year 0 (1 BC = 0000). */
function isoYear(year: number): string {
  if (year > 9999) return `+${year}`;
  const abs = Math.abs(year);
  const digits = abs < 10 ? `000${abs}` : abs < 100 ? `00${abs}` : abs < 1000 ? `0${abs}` : `${abs}`;
  return year < 0 ? `-${digits}` : digits;
}

/** Debezium maps date ±infinity to LocalDate ±5877611-06-21/22 (PostgresValueConverter), i.e. these epoch days. */
const DATE_INFINITY = '2146033979';
const DATE_MINUS_INFINITY = '-2147472691';

/** io.debezium.time.Date: days since 1970-01-01. */
export function dateToEpochDays(text: string): string {
  if (text === 'infinity') return DATE_INFINITY;
  if (text === '-infinity') return DATE_MINUS_INFINITY;
  begin();
  const d = date(text);
  const year = era(text, 'date') ? 1 - d.year : d.year;
  return String(daysFromCivil(year, d.month, d.day));
}

/** io.debezium.time.MicroTime: microseconds since midnight ("24:00:00" is 86400000000). */
export function timeToMicros(text: string): string {
  begin();
  const seconds = clock(text);
  if (failed || at !== text.length) throw new DateTimeFormatError('time');
  return String(seconds * 1e6 + fractionMicros());
}

/** io.debezium.time.ZonedTime: the time in UTC, `HH:MM:SS[.ffffff]Z`, fraction digits as printed. */
export function timetzToUtc(text: string): string {
  begin();
  const local = clock(text);
  const utc = local - offset(text);
  if (failed || at !== text.length) throw new DateTimeFormatError('timetz');
  // 24:00:00+00 is the end of the day, not the start of the next; keep it as Debezium does.
  let s = utc === 86400 && local === 86400 && fraction === '' ? 86400 : ((utc % 86400) + 86400) % 86400;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  return `${pad2(h)}:${pad2(m)}:${pad2(s - m * 60)}${fraction === '' ? '' : `.${fraction}`}Z`;
}

function microsText(seconds: number, micros: number): string {
  // seconds * 1e6 stays exact below 2^53; outside roughly 1685..2255 fall back to bigint.
  if (seconds < 9e9 && seconds > -9e9) return String(seconds * 1e6 + micros);
  return String(BigInt(seconds) * 1000000n + BigInt(micros));
}

/** io.debezium.time.MicroTimestamp: microseconds since the epoch, ±infinity as Long.MAX/MIN_VALUE. */
export function timestampToMicros(text: string): string {
  if (text === 'infinity') return '9223372036854775807';
  if (text === '-infinity') return '-9223372036854775808';
  begin();
  const d = date(text);
  expect(text, 0x20);
  const seconds = clock(text);
  const year = era(text, 'timestamp') ? 1 - d.year : d.year;
  return microsText(daysFromCivil(year, d.month, d.day) * 86400 + seconds, fractionMicros());
}

const UTC_STAMP = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d{1,6})?\+00$/;

/** io.debezium.time.ZonedTimestamp: ISO-8601 in UTC with the fraction digits PostgreSQL printed. */
export function timestamptzToUtc(text: string): string {
  const n = text.length;
  // Most sessions print UTC ("2024-01-02 03:04:05.123456+00"): the text only needs rearranging.
  if (
    n >= 22 &&
    text.charCodeAt(10) === 0x20 &&
    text.charCodeAt(n - 3) === 0x2b &&
    text.charCodeAt(n - 2) === 0x30 &&
    text.charCodeAt(n - 1) === 0x30 &&
    UTC_STAMP.test(text)
  ) {
    return `${text.slice(0, 10)}T${text.slice(11, n - 3)}Z`;
  }
  if (text === 'infinity' || text === '-infinity') return text;
  begin();
  const d = date(text);
  expect(text, 0x20);
  const clockStart = at;
  const seconds = clock(text);
  const clockEnd = at;
  const east = offset(text);
  const bc = era(text, 'timestamptz');
  if (east === 0 && !bc && clockStart === 11)
    return `${text.slice(0, 10)}T${text.slice(clockStart, clockEnd)}Z`;
  const epoch = daysFromCivil(bc ? 1 - d.year : d.year, d.month, d.day) * 86400 + seconds - east;
  const days = Math.floor(epoch / 86400);
  let s = epoch - days * 86400;
  const c = civilFromDays(days);
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  const frac = fraction === '' ? '' : `.${fraction}`;
  return `${isoYear(c.year)}-${pad2(c.month)}-${pad2(c.day)}T${pad2(h)}:${pad2(m)}:${pad2(s - m * 60)}${frac}Z`;
}

const INTERVAL_COUNT = /^[+-]?\d+$/;
const INTERVAL_TIME = /^([+-]?)(\d+):(\d\d):(\d\d)(?:\.(\d+))?$/;

/**
 * io.debezium.time.Interval from IntervalStyle=postgres text ("1 year -2 mons +3 days -04:05:06.5").
 * Debezium (Interval.toIsoString) prints every field with its own sign, so "00:00:00" becomes
 * "P0Y0M0DT0H0M0S" and "-04:05:06.5" becomes "P0Y0M0DT-4H-5M-6.5S". Exact: seconds stay decimal text.
 */
export function intervalToIso(text: string): string {
  // PostgreSQL 17's infinite intervals have no ISO form; pass them through like timestamptz.
  if (text === 'infinity' || text === '-infinity') return text;
  let years = 0;
  let months = 0;
  let days = 0;
  let hours = '0';
  let minutes = '0';
  let seconds = '0';
  const parts = text.split(' ');
  for (let k = 0; k < parts.length; k++) {
    const part = parts[k] ?? '';
    const time = INTERVAL_TIME.exec(part);
    if (time) {
      const sign = time[1] === '-' ? '-' : '';
      const h = Number(time[2]);
      const m = Number(time[3]);
      const s = Number(time[4]);
      const frac = (time[5] ?? '').replace(/0+$/, '');
      hours = h === 0 ? '0' : `${sign}${h}`;
      minutes = m === 0 ? '0' : `${sign}${m}`;
      seconds = s === 0 && frac === '' ? '0' : `${sign}${s}${frac === '' ? '' : `.${frac}`}`;
      continue;
    }
    const unit = parts[++k];
    if (!INTERVAL_COUNT.test(part) || unit === undefined) throw new DateTimeFormatError('interval');
    const count = Number(part);
    if (unit === 'year' || unit === 'years') years = count;
    else if (unit === 'mon' || unit === 'mons') months = count;
    else if (unit === 'day' || unit === 'days') days = count;
    else throw new DateTimeFormatError('interval');
  }
  return `P${years}Y${months}M${days}DT${hours}H${minutes}M${seconds}S`;
}
