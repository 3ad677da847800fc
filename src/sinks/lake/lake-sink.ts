import type { ConsumerContext, ConsumerRecord } from '../../consumers/define-consumer.ts';
import { ConfigError } from '../../core/errors.ts';
import { Lookahead } from '../lookahead.ts';
import type { SinkKind } from '../sink.ts';
import { LAKE_OPTIONS, type LakeOptions, prepareLakeDir } from './lake-options.ts';
import { type LakeScan, scanInChunks, scanLake } from './lake-scan.ts';
import { LakeTarget } from './lake-target.ts';
import type { LakeTx } from './lake-tx.ts';

export { LAKE_OPTIONS, type LakeOptions, lakePath, prepareLakeDir } from './lake-options.ts';

export const lakeSinkKind: SinkKind<LakeOptions> = {
  kind: 'lake',
  description:
    'Parquet lake: bronze (every change), silver (current rows), gold (SQL models), SQLite catalog',
  options: LAKE_OPTIONS,
  // Each commit writes Parquet files and a snapshot: thousands of changes per commit, at most a
  // second's wait to gather them (bench/lake.ts: the cost per commit dwarfs the cost per change
  // at 500). 25,000 rather than 10,000: a third more changes/s and a quarter less CPU catching
  // up, at the same peak memory (bench/lake-backlog.ts, docs/lake.md "Measured").
  defaultBatch: { maxRecords: 25_000, maxWaitMs: 1000 },
  async check(options, env) {
    if (env.format !== 'debezium') {
      throw new ConfigError(
        `sinks.${env.name}: the lake sink needs format "debezium" (it is "${env.format}")`,
        {
          hint: 'set "format": "debezium" (the default): the lake reads op, LSN and commit time from the envelope',
        },
      );
    }
    prepareLakeDir(options, env);
  },
  create(options, env) {
    const root = prepareLakeDir(options, env);
    const target = new LakeTarget(root, options, {
      dataDir: env.dataDir,
      topicPrefix: env.topicPrefix,
      ...(env.log ? { log: env.log } : {}),
    });
    return {
      target,
      async open(context) {
        target.logger = context.logger;
      },
      write: lakeWrite(),
    };
  },
};

/**
 * The lake sink's `write`: the batch goes into the lake transaction (`LakeTx.adopt`), read ahead
 * when the lane offered it with the previous batch: the next batch is read, a chunk at a time,
 * while DuckDB writes this one's files.
 */
export function lakeWrite(): (
  batch: readonly ConsumerRecord<unknown>[],
  tx: unknown,
  context: Pick<ConsumerContext<unknown>, 'upcoming'>,
) => Promise<void> {
  const ahead = new Lookahead<Promise<LakeScan | undefined>>();
  return async (batch, tx, context) => {
    const lake = tx as LakeTx;
    lake.adopt((await ahead.take(batch)) ?? scanLake(batch));
    lake.whileWriting = () =>
      ahead.prepare(context.upcoming?.(), (next) =>
        scanInChunks(next).then(
          (scan) => {
            lake.preload(scan.batch);
            return scan;
          },
          () => undefined,
        ),
      );
  };
}
