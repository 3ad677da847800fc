import { readSchemaHistory } from '../capture/schema-history.ts';
import type { SnapshotTracker } from '../capture/snapshot-tracker.ts';
import type { TributaryConfig } from '../config/config-schema.ts';
import type { EventLog } from '../core/event-log.ts';
import { requestSnapshot } from '../source/postgres/snapshot-signal.ts';
import { parseTableName } from '../source/postgres/table-name.ts';
import type { SchemaHistoryControl, SnapshotControl } from './control-plane-deps.ts';

/**
 * Snapshots as the API drives them: progress from the running capture's tracker; a start inserts
 * an `execute-snapshot` signal per table (as `tributary snapshot` does), which the capture picks
 * up from the stream. Errors keep their codes (a table outside the publication, a bad condition).
 */
export function snapshotControl(
  tracker: Pick<SnapshotTracker, 'status'>,
  config: TributaryConfig,
): SnapshotControl {
  return {
    async progress() {
      return tracker.status().map((job) => ({
        id: `${job.kind}:${job.table}`,
        table: job.table,
        kind: job.kind,
        state: job.state,
        condition: job.condition,
        rowsDone: job.rows,
        rowsTotal: job.totalRows,
        rowsPerSecond: job.rowsPerSecond,
        etaSeconds: job.etaSeconds,
        ...(job.error ? { error: job.error } : {}),
      }));
    },
    async start(tables, where) {
      const url = config.source.url;
      if (!url) throw new Error('the capture has no source URL');
      const ids: string[] = [];
      for (const table of tables) {
        const result = await requestSnapshot({
          url,
          table: parseTableName(table),
          condition: where,
          publication: config.source.publication,
          signalTable: parseTableName(config.snapshot.signalTable),
        });
        ids.push(result.id);
      }
      return { ids };
    },
  };
}

/** The schema history topic of the capture's log. */
export function schemaHistoryControl(log: EventLog, topicPrefix: string): SchemaHistoryControl {
  return {
    list: (table) => readSchemaHistory(log, { topicPrefix, ...(table === undefined ? {} : { table }) }),
  };
}
