/**
 * The consumer a sink runs as: the generated module `<dataDir>/sinks/<name>/index.ts` default-
 * exports `await sinkConsumer(spec, env)`. The sink's `open`/`close` ride on the target session,
 * which the worker opens before the first batch and closes at shutdown.
 */
import pino from 'pino';
import { type DefinedConsumer, defineConsumer } from '../consumers/define-consumer.ts';
import type { TransactionalTarget } from '../consumers/transactional.ts';
import type { SinkEnvironment } from './sink.ts';
import type { SinkSpec } from './sink-options.ts';
import { loadSinkKind } from './sink-registry.ts';

export async function sinkConsumer(
  spec: SinkSpec,
  env: SinkEnvironment,
): Promise<DefinedConsumer<unknown, unknown>> {
  const kind = await loadSinkKind(spec.common.kind, `sinks.${spec.name}`);
  const sink = await kind.create(spec.options, env);
  const logger = pino({ level: process.env.TRIBUTARY_LOG_LEVEL ?? 'info' }).child({ sink: spec.name });
  const target: TransactionalTarget<unknown> = {
    kind: sink.target.kind,
    description: sink.target.description,
    async open(options) {
      const session = await sink.target.open(options);
      try {
        await sink.open?.({ env, logger }, undefined);
      } catch (error) {
        await session.close();
        throw error;
      }
      return {
        offsets: (group, partitions) => session.offsets(group, partitions),
        transaction: (group, offsets, work) => session.transaction(group, offsets, work),
        async close() {
          try {
            await sink.close?.();
          } finally {
            await session.close();
          }
        },
      };
    },
  };
  const c = spec.common;
  return defineConsumer<unknown, unknown>({
    topics: [...spec.topics],
    group: spec.name,
    ...(c.replicas !== undefined ? { replicas: c.replicas } : {}),
    // `batchSize` sets the records per batch; the kind's wait to fill one stays (the lake's).
    batch: {
      ...(kind.defaultBatch ?? { maxRecords: 500 }),
      ...(c.batchSize !== undefined ? { maxRecords: c.batchSize } : {}),
    },
    ...(c.retryAttempts !== undefined ? { retry: { attempts: c.retryAttempts } } : {}),
    ...(c.memoryMb !== undefined ? { memoryMb: c.memoryMb } : {}),
    transactional: target,
    handle: (batch, ctx) => sink.write(batch, ctx.tx, ctx),
  });
}
