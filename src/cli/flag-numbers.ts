import { ConfigError } from '../core/errors.ts';

/**
 * `text`, the value of command-line flag `flag`, as a whole number of at least `min` (digits only:
 * `5s`, `1e3` and `-1` are refused), or a `ConfigError` naming the flag and the value given.
 */
export function wholeNumber(flag: string, text: string, min: number, hint?: string): number {
  const n = Number(text);
  if (!/^\s*\d+\s*$/.test(text) || !Number.isSafeInteger(n) || n < min) {
    throw new ConfigError(
      `${flag} must be a whole number of at least ${min}, not ${JSON.stringify(text)}`,
      hint ? { hint } : {},
    );
  }
  return n;
}
