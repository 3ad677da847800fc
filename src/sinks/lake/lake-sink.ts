import { ConfigError } from '../../core/errors.ts';
import type { SinkKind } from '../sink.ts';
import { LAKE_OPTIONS, type LakeOptions, prepareLakeDir } from './lake-options.ts';
import { LakeTarget, type LakeTx } from './lake-target.ts';

export { LAKE_OPTIONS, type LakeOptions, lakePath, prepareLakeDir } from './lake-options.ts';

export const lakeSinkKind: SinkKind<LakeOptions> = {
  kind: 'lake',
  description:
    'Parquet lake: bronze (every change), silver (current rows), gold (SQL models), SQLite catalog',
  options: LAKE_OPTIONS,
  // Each commit writes Parquet files and a snapshot: thousands of changes per commit, at most a
  // second's wait to gather them (bench/lake.ts: the cost per commit dwarfs the cost per change
  // at 500).
  defaultBatch: { maxRecords: 10_000, maxWaitMs: 1000 },
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
      async write(batch, tx) {
        (tx as LakeTx).add(batch);
      },
    };
  },
};
