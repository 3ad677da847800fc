/**
 * Exact money: a decimal as captured (numeric values arrive as JSON strings, e.g. "12.30") held
 * as a BigInt count of the smallest unit at a fixed scale (cents at scale 2). Never a float.
 */
import { SinkRecordError } from '../sink.ts';

const DECIMAL = /^([+-]?)(\d*)(?:\.(\d*))?$/;

/**
 * `"12.3"` at scale 2 → `1230n`. A value with more significant fractional digits than `scale`
 * cannot be held exactly: a `SinkRecordError` naming `column` (raise the service's `scale`).
 */
export function toScaled(value: unknown, scale: number, column: string): bigint {
  if (typeof value === 'bigint') return value * 10n ** BigInt(scale);
  const text = typeof value === 'number' ? numberText(value, column) : String(value).trim();
  const match = DECIMAL.exec(text);
  if (!match || (match[2] === '' && (match[3] ?? '') === '')) {
    throw new SinkRecordError(`${column}: ${JSON.stringify(text)} is not a decimal number`);
  }
  const [, sign, whole = '', fraction = ''] = match;
  const kept = fraction.slice(0, scale).padEnd(scale, '0');
  if (/[1-9]/.test(fraction.slice(scale))) {
    throw new SinkRecordError(
      `${column}: ${text} has more than ${scale} decimal places and cannot be held exactly`,
      { hint: `set the service's "scale" to at least ${fraction.replace(/0+$/, '').length}` },
    );
  }
  const scaled = BigInt(`${whole || '0'}${kept}`);
  return sign === '-' ? -scaled : scaled;
}

function numberText(value: number, column: string): string {
  if (!Number.isFinite(value)) throw new SinkRecordError(`${column}: ${value} is not a decimal number`);
  return Number.isInteger(value) ? value.toFixed(0) : String(value);
}

/** `1230n` at scale 2 → `"12.30"`. */
export function formatScaled(value: bigint, scale: number): string {
  const negative = value < 0n;
  const digits = (negative ? -value : value).toString().padStart(scale + 1, '0');
  const whole = digits.slice(0, digits.length - scale);
  const fraction = scale > 0 ? `.${digits.slice(digits.length - scale)}` : '';
  return `${negative ? '-' : ''}${whole}${fraction}`;
}
