import { expect } from 'vitest';
import type { StoredRecord } from '../../src/core/record.ts';
import { auditMismatches } from './audit-history.ts';

export { AUDITED_TABLES, AuditedWorkload, auditMismatches } from './audit-history.ts';

/**
 * The oracle of the crash tests: the records of the `accounts` topic, per key, equal the `audit`
 * history exactly (same changes, same order, each once; a tombstone right after its delete).
 * Returns how many change events the log holds.
 */
export async function expectLogEqualsAudit(
  records: readonly StoredRecord[],
  query: (sql: string) => Promise<{ rows: { key: string; version: number; op: string }[] }>,
): Promise<number> {
  const { events, problems } = await auditMismatches(records, query);
  expect(problems).toEqual([]);
  return events;
}
