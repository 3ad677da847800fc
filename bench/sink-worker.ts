/**
 * A configured sink as a replica runs it, for the benches: `records` appended to an embedded log
 * under `dataDir` (given as chunks, so a bench need not hold every record at once), then the
 * sink's consumer (`sinkConsumer`) run by a `ConsumerRunner` on partition 0 of `topic` until
 * `done()` says so. Returns the seconds and the CPU seconds from the assignment.
 */
import { join } from 'node:path';
import pino from 'pino';
import { ConsumerStore } from '../src/consumers/consumer-store.ts';
import { ConsumerRunner } from '../src/consumers/worker/consumer-runner.ts';
import { validateDefinition } from '../src/consumers/worker/load-consumer.ts';
import { EmbeddedEventLog } from '../src/log/embedded/sqlite-event-log.ts';
import type { SinkEnvironment } from '../src/sinks/sink.ts';
import { sinkConsumer } from '../src/sinks/sink-consumer.ts';
import type { SinkSpec } from '../src/sinks/sink-options.ts';

export interface LoggedRecord {
  readonly topic: string;
  readonly key: string | null;
  readonly value: string;
  readonly timestamp: number;
}

export async function runSinkReplica(
  dataDir: string,
  topic: string,
  records: Iterable<readonly LoggedRecord[]>,
  spec: SinkSpec,
  env: SinkEnvironment,
  done: () => Promise<boolean> | boolean,
): Promise<{ seconds: number; cpuSeconds: number }> {
  const writer = EmbeddedEventLog.open({ dataDir, durable: false });
  for (const chunk of records) {
    await writer.append(
      chunk.map((r) => ({
        topic: r.topic,
        key: r.key,
        value: r.value,
        headers: {},
        timestamp: r.timestamp,
      })),
    );
  }
  await writer.close();
  const log = EmbeddedEventLog.open({ dataDir, readonly: true });
  const store = ConsumerStore.open({ dataDir });
  const definition = await sinkConsumer(spec, env);
  const consumer = validateDefinition(spec.name, join(dataDir, 'index.ts'), definition);
  let fatal: Error | undefined;
  const runner = new ConsumerRunner({
    consumer,
    replica: 0,
    log,
    store,
    logger: pino({ level: 'silent' }),
    onFatal: (error) => {
      fatal = error;
    },
  });
  try {
    await runner.start();
    const started = performance.now();
    const cpu = process.cpuUsage();
    await runner.assign([{ topic, partition: 0 }]);
    while (!(await done())) {
      if (fatal) throw fatal;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const used = process.cpuUsage(cpu);
    return { seconds: (performance.now() - started) / 1000, cpuSeconds: (used.user + used.system) / 1e6 };
  } finally {
    await runner.stop();
    store.close();
    await log.close();
  }
}
