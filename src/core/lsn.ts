/**
 * PostgreSQL log sequence numbers. Internally a `bigint`; on the wire and in user-facing text
 * the `X/Y` form PostgreSQL prints; in Debezium's `source.lsn` a decimal integer.
 */
export type Lsn = bigint;

export const ZERO_LSN: Lsn = 0n;

export function parseLsn(text: string): Lsn {
  const match = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text.trim());
  if (!match)
    throw new RangeError(`not an LSN: ${JSON.stringify(text)} (expected the X/Y form, e.g. 0/16B3748)`);
  return (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`);
}

export function formatLsn(lsn: Lsn): string {
  const hi = Number(lsn >> 32n);
  const lo = Number(lsn & 0xffffffffn);
  return `${hi.toString(16).toUpperCase()}/${lo.toString(16).toUpperCase()}`;
}
