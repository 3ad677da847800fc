import type {
  Column,
  Relation,
  ReplicaIdentity,
  SourceMessage,
  TransactionChange,
  TupleValue,
} from '../../core/change-event.ts';
import { DecodeError } from '../../core/errors.ts';
import type { Lsn } from '../../core/lsn.ts';
import { type TypeRegistry, unknownType } from './type-registry.ts';

/** A Relation message as sent, before its column types are resolved. */
export interface RawRelation {
  id: number;
  schema: string;
  table: string;
  replicaIdentity: ReplicaIdentity;
  columns: { name: string; typeOid: number; typeMod: number; isKey: boolean }[];
}

export type DecodedMessage =
  | SourceMessage
  | { kind: 'relation'; relation: RawRelation }
  | { kind: 'ignored' };

/** Microseconds from the Unix epoch to the PostgreSQL epoch (2000-01-01T00:00:00Z). */
const PG_EPOCH_US = 946_684_800_000_000n;

const MESSAGE_NAMES: { readonly [type: string]: string } = {
  B: 'Begin',
  C: 'Commit',
  O: 'Origin',
  R: 'Relation',
  Y: 'Type',
  I: 'Insert',
  U: 'Update',
  D: 'Delete',
  T: 'Truncate',
  M: 'Message',
};

const REPLICA_IDENTITIES: { readonly [relreplident: string]: ReplicaIdentity } = {
  d: 'default',
  n: 'nothing',
  f: 'full',
  i: 'index',
};

/**
 * `Buffer#utf8Slice` is what `toString('utf8', ...)` calls after its argument checks; called
 * directly it decoded rows 10-15% faster in bench/decoder.ts. It is undocumented, so it is used
 * only when present. (A latin1 path for pure-ASCII values measured slower: the scan costs more.)
 */
interface Utf8Slicer {
  utf8Slice(start: number, end: number): string;
}
const HAS_UTF8_SLICE = typeof (Buffer.prototype as Partial<Utf8Slicer>).utf8Slice === 'function';

const IGNORED: DecodedMessage = Object.freeze({ kind: 'ignored' });
const EMPTY = Buffer.alloc(0);

// Byte values of the tuple and submessage markers, compared in the hot loop.
const T_TEXT = 0x74; // 't'
const T_NULL = 0x6e; // 'n'
const T_UNCHANGED = 0x75; // 'u' (unchanged TOAST value, not sent)
const T_BINARY = 0x62; // 'b'
const NEW_TUPLE = 0x4e; // 'N'
const KEY_TUPLE = 0x4b; // 'K'
const OLD_TUPLE = 0x4f; // 'O'

/**
 * Decodes pgoutput messages of protocol version 1 (the "Logical Replication Message Formats" of
 * the PostgreSQL protocol docs), one XLogData payload at a time, into core source messages.
 *
 * The decoder keeps the relations it was given with `addRelation`; a change for any other relation
 * id is a `DecodeError`, as is a truncated or malformed message, binary tuple data (we never ask
 * for it) or a message type outside protocol version 1 (streaming and two-phase messages).
 *
 * Speed: integers are read straight from the buffer, the only allocations per row are the tuple
 * array, its value strings and the event objects. Not safe for concurrent use (it keeps the read
 * position in fields rather than allocating a cursor per message); one decoder per stream.
 */
export class PgOutputDecoder {
  private readonly relations = new Map<number, Relation>();
  private buf: Buffer = EMPTY;
  private pos = 0;
  private start = 0;
  private end = 0;

  constructor(private readonly types: TypeRegistry) {}

  /**
   * Decodes `buf[start, end)`, the payload after the 25-byte XLogData header. `walStart` is the
   * header's dataStart: the LSN of the change (and the position of a truncate). A Truncate yields
   * one `TransactionChange` (op `t`) per truncated relation; its CASCADE / RESTART IDENTITY options
   * are dropped.
   */
  decode(buf: Buffer, start: number, end: number, walStart: Lsn): DecodedMessage | DecodedMessage[] {
    if (start < 0 || end > buf.length || start >= end) {
      throw new DecodeError(
        `empty or out-of-range pgoutput message [${start}, ${end}) in ${buf.length} bytes`,
      );
    }
    this.buf = buf;
    this.start = start;
    this.end = end;
    this.pos = start + 1;
    const message = this.body(buf[start]!, walStart);
    if (this.pos !== end) throw this.error(`has ${end - this.pos} unexpected trailing bytes`);
    return message;
  }

  /**
   * Registers a relation once the registry knows its column types (types not resolved by then
   * become `unknownType`). Replaces any earlier relation with the same id, as PostgreSQL sends a
   * new Relation message after a schema change.
   */
  addRelation(raw: RawRelation): Relation {
    const columns: Column[] = raw.columns.map((c) => ({
      ...c,
      type: this.types.get(c.typeOid) ?? unknownType(c.typeOid),
    }));
    const keyIndexes: number[] = [];
    for (let i = 0; i < columns.length; i++) if (columns[i]!.isKey) keyIndexes.push(i);
    const relation: Relation = { ...raw, columns, keyIndexes };
    this.relations.set(raw.id, relation);
    return relation;
  }

  relation(id: number): Relation | undefined {
    return this.relations.get(id);
  }

  private body(type: number, walStart: Lsn): DecodedMessage | DecodedMessage[] {
    // Object properties are evaluated in source order, which here is the wire order.
    switch (type) {
      case 0x49: // 'I'
        return this.insert(walStart);
      case 0x55: // 'U'
        return this.update(walStart);
      case 0x44: // 'D'
        return this.delete(walStart);
      case 0x42: // 'B'
        return { kind: 'begin', finalLsn: this.u64(), commitTimeUs: this.timestamp(), xid: this.u32() };
      case 0x43: // 'C': flags (unused), then the positions and time
        this.u8();
        return { kind: 'commit', commitLsn: this.u64(), endLsn: this.u64(), commitTimeUs: this.timestamp() };
      case 0x52: // 'R'
        return { kind: 'relation', relation: this.rawRelation() };
      case 0x54: // 'T'
        return this.truncate(walStart);
      case 0x4d: // 'M'
        return this.logicalMessage();
      case 0x4f: // 'O': commit LSN on the origin server, origin name
        this.u64();
        this.cstring();
        return IGNORED;
      case 0x59: // 'Y': oid, namespace, name; the registry reads pg_type instead
        this.u32();
        this.cstring();
        this.cstring();
        return IGNORED;
      default:
        throw new DecodeError(
          `unsupported pgoutput message type ${describeByte(type)} at offset ${this.start} ` +
            '(only protocol version 1 without streaming is supported)',
        );
    }
  }

  private insert(lsn: Lsn): TransactionChange {
    const relation = this.knownRelation();
    this.expectMarker(NEW_TUPLE, "'N' (new tuple)");
    const after = this.tuple(relation);
    return { kind: 'change', event: { op: 'c', relation, before: null, after, lsn } };
  }

  private update(lsn: Lsn): TransactionChange {
    const relation = this.knownRelation();
    let before: TupleValue[] | null = null;
    const marker = this.u8();
    if (marker === KEY_TUPLE) before = this.keyTuple(relation);
    else if (marker === OLD_TUPLE) before = this.tuple(relation);
    else if (marker !== NEW_TUPLE) throw this.badMarker(marker, "'K', 'O' or 'N'");
    if (before !== null) this.expectMarker(NEW_TUPLE, "'N' (new tuple)");
    const after = this.tuple(relation);
    return { kind: 'change', event: { op: 'u', relation, before, after, lsn } };
  }

  private delete(lsn: Lsn): TransactionChange {
    const relation = this.knownRelation();
    const marker = this.u8();
    let before: TupleValue[];
    if (marker === KEY_TUPLE) before = this.keyTuple(relation);
    else if (marker === OLD_TUPLE) before = this.tuple(relation);
    else throw this.badMarker(marker, "'K' or 'O'");
    return { kind: 'change', event: { op: 'd', relation, before, after: null, lsn } };
  }

  private truncate(lsn: Lsn): TransactionChange[] {
    const count = this.u32();
    this.u8(); // options: 1 CASCADE, 2 RESTART IDENTITY
    this.need(count * 4, 'relation ids');
    const changes: TransactionChange[] = [];
    for (let i = 0; i < count; i++) {
      const relation = this.knownRelation();
      changes.push({ kind: 'change', event: { op: 't', relation, before: null, after: null, lsn } });
    }
    return changes;
  }

  private logicalMessage(): DecodedMessage {
    const transactional = (this.u8() & 1) === 1;
    const lsn = this.u64();
    const prefix = this.cstring();
    const length = this.u32();
    this.need(length, 'message content');
    // Copied so that the event does not pin (or see reuse of) the whole network buffer.
    const content = Buffer.from(this.buf.subarray(this.pos, this.pos + length));
    this.pos += length;
    return { kind: 'message', transactional, lsn, prefix, content };
  }

  private rawRelation(): RawRelation {
    const id = this.u32();
    // pgoutput sends an empty namespace for pg_catalog.
    const schema = this.cstring() || 'pg_catalog';
    const table = this.cstring();
    const identityByte = this.u8();
    const replicaIdentity = REPLICA_IDENTITIES[String.fromCharCode(identityByte)];
    if (replicaIdentity === undefined)
      throw this.badMarker(identityByte, "replica identity 'd', 'n', 'f' or 'i'");
    const count = this.u16();
    const columns: RawRelation['columns'] = [];
    for (let i = 0; i < count; i++) {
      const flags = this.u8();
      const name = this.cstring();
      const typeOid = this.u32();
      const typeMod = this.i32();
      columns.push({ name, typeOid, typeMod, isKey: (flags & 1) === 1 });
    }
    return { id, schema, table, replicaIdentity, columns };
  }

  private knownRelation(): Relation {
    const id = this.u32();
    const relation = this.relations.get(id);
    if (relation === undefined)
      throw this.error(`refers to unknown relation id ${id} (no Relation message before it)`);
    return relation;
  }

  /**
   * An old tuple with replica identity DEFAULT or INDEX: PostgreSQL sends every column but only
   * the key ones carry values. Non-key positions are set to `null` whatever arrived, so `before`
   * never shows a non-key value that was not really sent.
   */
  private keyTuple(relation: Relation): TupleValue[] {
    const values = this.tuple(relation);
    const columns = relation.columns;
    for (let i = 0; i < values.length; i++) if (!columns[i]!.isKey) values[i] = null;
    return values;
  }

  /** The hot path: TupleData, one text value per column. Kept free of calls but the string slice. */
  private tuple(relation: Relation): TupleValue[] {
    const buf = this.buf;
    const end = this.end;
    let p = this.pos;
    if (p + 2 > end) throw this.truncatedAt(p, 'the column count of a tuple');
    const count = (buf[p]! << 8) | buf[p + 1]!;
    p += 2;
    if (count !== relation.columns.length) {
      throw this.error(
        `has a tuple of ${count} columns for ${relation.schema}.${relation.table}, ` +
          `whose Relation message had ${relation.columns.length}`,
      );
    }
    const values: TupleValue[] = new Array(count);
    for (let i = 0; i < count; i++) {
      if (p >= end) throw this.truncatedAt(p, `column ${i} of a tuple`);
      const kind = buf[p++]!;
      if (kind === T_TEXT) {
        if (p + 4 > end) throw this.truncatedAt(p, `the length of column ${i}`);
        const length = ((buf[p]! << 24) | (buf[p + 1]! << 16) | (buf[p + 2]! << 8) | buf[p + 3]!) >>> 0;
        p += 4;
        if (length > end - p) throw this.truncatedAt(p, `the ${length}-byte value of column ${i}`);
        values[i] = HAS_UTF8_SLICE
          ? (buf as unknown as Utf8Slicer).utf8Slice(p, p + length)
          : buf.toString('utf8', p, p + length);
        p += length;
      } else if (kind === T_NULL) {
        values[i] = null;
      } else if (kind === T_UNCHANGED) {
        values[i] = undefined;
      } else if (kind === T_BINARY) {
        throw this.error(`has a binary value in column ${i}, but binary mode is never requested`);
      } else {
        throw this.badMarkerAt(p - 1, kind, `tuple value kind 't', 'n' or 'u' for column ${i}`);
      }
    }
    this.pos = p;
    return values;
  }

  private expectMarker(expected: number, what: string): void {
    const marker = this.u8();
    if (marker !== expected) throw this.badMarker(marker, what);
  }

  private need(bytes: number, what: string): void {
    if (bytes > this.end - this.pos) throw this.truncatedAt(this.pos, what);
  }

  private u8(): number {
    if (this.pos >= this.end) throw this.truncatedAt(this.pos, 'a byte');
    return this.buf[this.pos++]!;
  }

  private u16(): number {
    this.need(2, 'an Int16');
    const p = this.pos;
    this.pos = p + 2;
    return (this.buf[p]! << 8) | this.buf[p + 1]!;
  }

  private i32(): number {
    this.need(4, 'an Int32');
    const b = this.buf;
    const p = this.pos;
    this.pos = p + 4;
    return (b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!;
  }

  private u32(): number {
    return this.i32() >>> 0;
  }

  private u64(): bigint {
    this.need(8, 'an Int64');
    const value = this.buf.readBigUInt64BE(this.pos);
    this.pos += 8;
    return value;
  }

  /** A TimestampTz (PostgreSQL-epoch microseconds) as Unix-epoch microseconds. */
  private timestamp(): bigint {
    this.need(8, 'a timestamp');
    const value = this.buf.readBigInt64BE(this.pos);
    this.pos += 8;
    return value + PG_EPOCH_US;
  }

  private cstring(): string {
    const zero = this.buf.indexOf(0, this.pos);
    if (zero < 0 || zero >= this.end) throw this.truncatedAt(this.pos, 'a NUL-terminated string');
    const value = this.buf.toString('utf8', this.pos, zero);
    this.pos = zero + 1;
    return value;
  }

  private error(problem: string, offset = this.pos): DecodeError {
    const type = this.buf[this.start]!;
    const name = MESSAGE_NAMES[String.fromCharCode(type)] ?? describeByte(type);
    return new DecodeError(
      `pgoutput ${name} message ${problem} ` +
        `(at byte ${offset - this.start} of ${this.end - this.start}, buffer offset ${offset})`,
    );
  }

  private truncatedAt(offset: number, what: string): DecodeError {
    return this.error(`is truncated: it ends before ${what}`, offset);
  }

  private badMarker(marker: number, expected: string): DecodeError {
    return this.badMarkerAt(this.pos - 1, marker, expected);
  }

  private badMarkerAt(offset: number, marker: number, expected: string): DecodeError {
    return this.error(`has ${describeByte(marker)} where ${expected} was expected`, offset);
  }
}

function describeByte(byte: number): string {
  const hex = `0x${byte.toString(16).padStart(2, '0')}`;
  return byte >= 0x20 && byte < 0x7f ? `'${String.fromCharCode(byte)}' (${hex})` : hex;
}
