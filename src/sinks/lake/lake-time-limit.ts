/**
 * A time limit for DuckDB work: the connection is interrupted once `ms` have passed, and the
 * interruption's error is replaced by `timeout()`'s (a message saying which limit stopped it).
 */
import type { DuckDBConnection } from '@duckdb/node-api';

export async function withTimeLimit<T>(
  connection: DuckDBConnection,
  ms: number,
  work: () => Promise<T>,
  timeout: () => Error,
): Promise<T> {
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    connection.interrupt();
  }, ms);
  try {
    return await work();
  } catch (error) {
    throw timedOut ? timeout() : error;
  } finally {
    clearTimeout(timer);
  }
}
