/**
 * Snapshot chunks as the log stores them: the rows of one chunk in PostgreSQL's `COPY ... TO STDOUT`
 * text format, one blob, plus a JSON header holding everything the encoder needs (relation, source
 * context, encoder options). The records are rendered when read, with the same encoder and the same
 * context as if they had been encoded at write time, so readers get identical bytes either way.
 * Writing a snapshot then costs what reading it from PostgreSQL costs (docs/embedded-log.md,
 * "Row batches").
 */
import type { Relation, Tuple } from '../core/change-event.ts';
import type { EventContext } from '../core/encoder.ts';
import { LogError } from '../core/errors.ts';
import type { AppendBatch, AppendRecord } from '../core/record.ts';
import { createEncoder, type EncoderOptions } from './index.ts';

export const COPY_ROWS_CODEC = 'pg-copy-rows';

/**
 * A chunk's rows as PostgreSQL sent them for `COPY ... TO STDOUT` (text format): one CopyData
 * message per row, back to back: `d`, the int32 length (4 + the payload's), and the payload, the
 * row's COPY text line ending in `\n`. Kept framed, a chunk is gathered off the socket in a few
 * large copies (one per socket read) instead of one copy per row.
 */
export interface CopyRows {
  readonly data: Buffer;
  readonly count: number;
}

/** The source context of a chunk's read events, bigints as decimal strings (JSON). */
export interface CopyRowsContext {
  readonly serverName: string;
  readonly database: string;
  readonly xid: number;
  readonly commitLsn: string;
  readonly lastCommittedLsn: string;
  readonly commitTimeUs: string;
  readonly nowUs: string;
}

export interface CopyRowsHeader {
  /** 2: the data is framed (`CopyRows`); 1: plain COPY text lines (still read). */
  readonly v: 1 | 2;
  readonly encoder: EncoderOptions;
  readonly relation: Relation;
  /** LSN of the read events (the high watermark's). */
  readonly lsn: string;
  readonly context: CopyRowsContext;
  /** `totalOrder` (and `data_collection_order`) of the first row; the next rows count up. */
  readonly firstOrder: number;
  readonly snapshot: 'true' | 'incremental';
  /** The batch's last row is the initial snapshot's last one (`source.snapshot: "last"`). */
  readonly lastIsFinal: boolean;
}

const NEWLINE = 0x0a;

/** Where each row's line is in a chunk: row i is `[bounds[2i], bounds[2i + 1])`, without its `\n`. */
export type RowBounds = Uint32Array;

const COPY_DATA = 0x64; // 'd'
const FRAME_HEADER = 5;

/**
 * The bounds of the rows of `data`, framed as CopyData messages (`count` of them, or as many as
 * there are when undefined); a frame that is cut short, of another kind, or whose line has no
 * `\n` is refused.
 */
export function frameBounds(data: Buffer, count?: number): RowBounds {
  const out: number[] | Uint32Array = count === undefined ? [] : new Uint32Array(count * 2);
  let at = 0;
  let i = 0;
  while (count === undefined ? at < data.length : i < count) {
    if (at + FRAME_HEADER > data.length) throw malformed(`row ${i + 1} is cut short`);
    if (data[at] !== COPY_DATA) throw malformed(`row ${i + 1} is not a CopyData message`);
    const end = at + 1 + data.readUInt32BE(at + 1);
    if (end > data.length || end <= at + FRAME_HEADER || data[end - 1] !== NEWLINE)
      throw malformed(`row ${i + 1} has no line end`);
    out[2 * i] = at + FRAME_HEADER;
    out[2 * i + 1] = end - 1;
    at = end;
    i++;
  }
  return Array.isArray(out) ? Uint32Array.from(out) : out;
}

/** Offset of row `i`'s frame in framed data, from its bounds. */
function frameStart(bounds: RowBounds, i: number): number {
  return bounds[2 * i]! - FRAME_HEADER;
}

/** The bounds of unframed COPY text (version 1 chunks): lines, each ending with `\n`. */
export function lineBounds(data: Buffer): RowBounds {
  const out: number[] = [];
  let start = 0;
  for (let at = data.indexOf(NEWLINE); at >= 0; at = data.indexOf(NEWLINE, at + 1)) {
    out.push(start, at);
    start = at + 1;
  }
  if (start !== data.length) throw malformed('its last row has no line end');
  return Uint32Array.from(out);
}

/** Frames COPY text lines (without their `\n`) as CopyData messages, the form of `CopyRows.data`. */
export function frameLines(lines: readonly string[]): CopyRows {
  const parts = lines.map((line) => {
    const body = Buffer.from(`${line}\n`);
    const frame = Buffer.allocUnsafe(FRAME_HEADER + body.length);
    frame[0] = COPY_DATA;
    frame.writeUInt32BE(body.length + 4, 1);
    body.copy(frame, FRAME_HEADER);
    return frame;
  });
  return { data: Buffer.concat(parts), count: lines.length };
}

/** Row `i`'s fields. */
export function decodeRow(data: Buffer, bounds: RowBounds, i: number): (string | null)[] {
  return decodeLine(data, bounds[2 * i]!, bounds[2 * i + 1]!);
}

/** The fields of one COPY text line (`end` excludes the newline), unescaped; `\N` is NULL. */
export function decodeLine(data: Buffer, start: number, end: number): (string | null)[] {
  // COPY escapes tabs inside values, so a tab always separates fields; most lines have no escape.
  const line = data.toString('utf8', start, end);
  const fields: (string | null)[] = line.split('\t');
  if (!line.includes('\\')) return fields;
  for (let i = 0; i < fields.length; i++) fields[i] = decodeField(fields[i]!);
  return fields;
}

/** Undoes COPY's text escaping (`\\`, `\t`, `\n`, `\r`, `\b`, `\f`, `\v`, octal and `\x` hex). */
export function decodeField(text: string): string | null {
  if (text === '\\N') return null;
  if (!text.includes('\\')) return text;
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c !== '\\' || i + 1 === text.length) {
      out += c;
      continue;
    }
    const next = text[++i]!;
    switch (next) {
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 't':
        out += '\t';
        break;
      case 'v':
        out += '\v';
        break;
      case 'x': {
        const hex = /^[0-9a-fA-F]{1,2}/.exec(text.slice(i + 1))?.[0];
        if (!hex) {
          out += 'x';
          break;
        }
        out += String.fromCharCode(Number.parseInt(hex, 16));
        i += hex.length;
        break;
      }
      default:
        if (next >= '0' && next <= '7') {
          const octal = /^[0-7]{1,3}/.exec(text.slice(i))![0];
          out += String.fromCharCode(Number.parseInt(octal, 8));
          i += octal.length - 1;
        } else {
          out += next;
        }
    }
  }
  return out;
}

/** Every row as a tuple (for the path that encodes at write time). */
export function copyRowTuples(rows: CopyRows): Tuple[] {
  const bounds = frameBounds(rows.data, rows.count);
  const tuples: Tuple[] = new Array(rows.count);
  for (let i = 0; i < rows.count; i++) tuples[i] = decodeRow(rows.data, bounds, i);
  return tuples;
}

/**
 * Keeps the rows for which `keep(fields)` is true; the fields are the row's values (decoded only
 * when called: a test of a key decodes the whole line, which is cheap next to a database read).
 * Rows all kept: `rows` itself.
 */
export function filterCopyRows(rows: CopyRows, keep: (fields: (string | null)[]) => boolean): CopyRows {
  const bounds = frameBounds(rows.data, rows.count);
  const parts: Buffer[] = [];
  let count = 0;
  let runStart = -1;
  for (let i = 0; i < rows.count; i++) {
    if (keep(decodeRow(rows.data, bounds, i))) {
      count++;
      if (runStart < 0) runStart = frameStart(bounds, i);
    } else if (runStart >= 0) {
      parts.push(rows.data.subarray(runStart, frameStart(bounds, i)));
      runStart = -1;
    }
  }
  if (count === rows.count) return rows;
  if (runStart >= 0) parts.push(rows.data.subarray(runStart, rows.data.length));
  return { data: parts.length === 1 ? parts[0]! : Buffer.concat(parts), count };
}

/** The first `n` rows of `rows` (which has more), and the fields of its row `n - 1`. */
export function takeRows(rows: CopyRows, n: number): { rows: CopyRows; last: (string | null)[] } {
  const bounds = frameBounds(rows.data, n + 1);
  return {
    rows: { data: rows.data.subarray(0, frameStart(bounds, n)), count: n },
    last: decodeRow(rows.data, bounds, n - 1),
  };
}

/** `source.snapshot` of row `index` of `count`. */
export function snapshotMarker(
  header: Pick<CopyRowsHeader, 'snapshot' | 'lastIsFinal'>,
  index: number,
  count: number,
): EventContext['snapshot'] {
  return header.lastIsFinal && index === count - 1 ? 'last' : header.snapshot;
}

export function toRowsContext(context: EventContext): CopyRowsContext {
  return {
    serverName: context.serverName,
    database: context.database,
    xid: context.xid,
    commitLsn: context.commitLsn.toString(),
    lastCommittedLsn: context.lastCommittedLsn.toString(),
    commitTimeUs: context.commitTimeUs.toString(),
    nowUs: context.nowUs.toString(),
  };
}

/**
 * The log item for a chunk's rows. Its first record is rendered once here, so that a row the
 * encoder rejects fails the append that writes it, not a reader later; it also gives the topic.
 */
export function copyRowBatch(header: CopyRowsHeader, rows: CopyRows): AppendBatch {
  const text = JSON.stringify(header);
  // Row 0 only: the chunk's rows are indexed by whoever reads it, not on the capture's thread.
  const first = openCopyRows(header, rows, frameBounds(rows.data, 1)).record(0);
  return {
    kind: 'batch',
    topic: first.topic,
    count: rows.count,
    timestamp: first.timestamp,
    codec: COPY_ROWS_CODEC,
    header: text,
    data: rows.data,
  };
}

/** Renders the records of a stored chunk by index; `bounds` of its rows (or of its first ones). */
export function openCopyRows(
  header: CopyRowsHeader,
  rows: CopyRows,
  bounds: RowBounds = frameBounds(rows.data, rows.count),
): { readonly count: number; record(index: number): AppendRecord } {
  if (header.v !== 1 && header.v !== 2) throw malformed(`unknown header version ${String(header.v)}`);
  const encoder = createEncoder(header.encoder);
  const relation = header.relation;
  const lsn = BigInt(header.lsn);
  const c = header.context;
  const base = {
    serverName: c.serverName,
    database: c.database,
    xid: c.xid,
    commitLsn: BigInt(c.commitLsn),
    lastCommittedLsn: BigInt(c.lastCommittedLsn),
    commitTimeUs: BigInt(c.commitTimeUs),
    nowUs: BigInt(c.nowUs),
  };
  const out: AppendRecord[] = [];
  return {
    count: rows.count,
    record(index: number): AppendRecord {
      if (!(index >= 0 && index < rows.count)) throw new RangeError(`row ${index} of ${rows.count}`);
      const after = decodeRow(rows.data, bounds, index);
      const order = header.firstOrder + index;
      out.length = 0;
      encoder.encode(
        { op: 'r', relation, before: null, after, lsn },
        {
          ...base,
          totalOrder: order,
          dataCollectionOrder: order,
          snapshot: snapshotMarker(header, index, rows.count),
        },
        out,
      );
      const record = out[0];
      if (out.length !== 1 || record === undefined) throw malformed('a read event did not give one record');
      return record;
    },
  };
}

/** The codec the log calls for items written by `copyRowBatch`. */
export const copyRowsCodec = {
  open(headerText: string, data: Uint8Array) {
    let header: CopyRowsHeader;
    try {
      header = JSON.parse(headerText) as CopyRowsHeader;
    } catch (cause) {
      throw malformed('its header is not JSON', cause);
    }
    if (header.v !== 1 && header.v !== 2) throw malformed(`unknown header version ${String(header.v)}`);
    const buffer = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const bounds = header.v === 1 ? lineBounds(buffer) : frameBounds(buffer);
    return openCopyRows(header, { data: buffer, count: bounds.length / 2 }, bounds);
  },
};

function malformed(detail: string, cause?: unknown): LogError {
  return new LogError('LOG_CORRUPT', `A stored snapshot chunk cannot be read: ${detail}`, {
    ...(cause === undefined ? {} : { cause }),
    hint: 'The log was damaged or written by another program; restore it or re-snapshot the table.',
  });
}
