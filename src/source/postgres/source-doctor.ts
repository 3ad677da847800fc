import pg from 'pg';
import { checkSourceUrl, classifyPgError } from './postgres-errors.ts';
import {
  type CheckResult,
  checkFreeSlots,
  checkInactiveSlots,
  checkPublication,
  checkReplicaIdentity,
  checkReplicationPrivilege,
  checkSlot,
  checkSlotWalKeepSize,
  checkTablesExist,
  checkVersion,
  checkWalLevel,
  checkWalSenders,
  serverFacts,
} from './source-checks.ts';
import { slotExists } from './source-setup.ts';
import type { TableName } from './table-name.ts';

export interface DoctorOptions {
  readonly url: string;
  readonly slot: string;
  readonly publication: string;
  /** Empty = all tables. */
  readonly tables: readonly TableName[];
}

/**
 * Runs every check of the source, read-only, and returns all results (capture's `preflight`
 * runs the same checks but stops at the first failure). A connection failure is thrown.
 */
export async function diagnoseSource(options: DoctorOptions): Promise<CheckResult[]> {
  checkSourceUrl(options.url);
  const client = new pg.Client({ connectionString: options.url, application_name: 'tributary doctor' });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const facts = await serverFacts(client);
    return [
      checkVersion(facts),
      checkWalLevel(facts),
      checkReplicationPrivilege(facts),
      checkFreeSlots(facts, options.slot, await slotExists(client, options.slot)),
      checkWalSenders(facts),
      checkSlotWalKeepSize(facts),
      await checkSlot(client, options.slot),
      await checkInactiveSlots(client),
      await checkPublication(client, options.publication, options.tables),
      await checkTablesExist(client, options.tables),
      await checkReplicaIdentity(client, options.tables),
    ];
  } catch (error) {
    throw classifyPgError(error, options.url);
  } finally {
    await client.end().catch(() => undefined);
  }
}
