import type { Lsn } from '../../core/lsn.ts';

/** Microseconds between the Unix epoch and PostgreSQL's epoch (2000-01-01). */
export const PG_EPOCH_OFFSET_US = 946_684_800_000_000n;

/** Size of the XLogData header ('w', dataStart, walEnd, sendTime) before the pgoutput message. */
export const XLOG_DATA_HEADER = 25;

export interface Keepalive {
  readonly walEnd: Lsn;
  readonly replyRequested: boolean;
}

export function readKeepalive(buf: Buffer): Keepalive {
  return { walEnd: buf.readBigUInt64BE(1), replyRequested: buf[17] === 1 };
}

/** The XLogData message's start LSN (the WAL position of the record it carries). */
export function readXLogDataStart(buf: Buffer): Lsn {
  return buf.readBigUInt64BE(1);
}

/** A Standby Status Update: written, flushed and applied positions (we report one position). */
export function standbyStatusUpdate(lsn: Lsn, nowUs: bigint, replyRequested = false): Buffer {
  const buf = Buffer.allocUnsafe(34);
  buf[0] = 0x72; // 'r'
  buf.writeBigUInt64BE(lsn, 1);
  buf.writeBigUInt64BE(lsn, 9);
  buf.writeBigUInt64BE(lsn, 17);
  buf.writeBigInt64BE(nowUs - PG_EPOCH_OFFSET_US, 25);
  buf[33] = replyRequested ? 1 : 0;
  return buf;
}

/** Quotes an SQL identifier (schema, table, publication, slot) for use in a command. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** Quotes an SQL string literal. */
export function quoteLiteral(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}
