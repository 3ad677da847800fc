/**
 * `tributary dlq show|replay|discard <consumer> --log nats://...`: the dead letters that
 * `consumers run` processes stored in the NATS log's bucket (`d.*` keys), from any machine.
 *
 * Replay works as the local `dlq replay` does: this process runs the consumer's own handler on
 * each pending dead letter (a transactional consumer's in a transaction of its target, no offset
 * written), one record per call in id order, and marks it `replayed` only after the handler
 * succeeded (compare-and-set on the entry's revision). So a replay is at least once: a crash
 * between the handler and the mark leaves it pending and the next replay runs it again. The running
 * replicas are not involved: a dead letter's partition has moved past it (the record's offset was
 * committed when it was dead-lettered), and per-key order was given up for that record then; its
 * key's later records may already be handled, as with the local replay.
 */
import type { TributaryConfig } from '../config/config-schema.ts';
import {
  claimNatsDeadLetter,
  type NatsDeadLetter,
  natsDeadLetters,
  recordNatsFailure,
  resolveNatsDeadLetter,
} from '../consumers/nats/nats-dead-letters.ts';
import { NatsLogBucket } from '../log/nats/nats-log-bucket.ts';
import { natsLogRef } from '../log/open-event-log.ts';
import { replay, replayModule } from './dlq-replay.ts';
import { printLetter } from './dlq-show.ts';
import { output } from './stdout-writer.ts';

async function withBucket<T>(config: TributaryConfig, fn: (bucket: NatsLogBucket) => Promise<T>): Promise<T> {
  const bucket = await NatsLogBucket.open(natsLogRef(config)!);
  try {
    return await fn(bucket);
  } finally {
    await bucket.close();
  }
}

export function showFromNats(
  config: TributaryConfig,
  consumer: string,
  id: number,
  flags: { json?: boolean },
): Promise<void> {
  return withBucket(config, async (bucket) => {
    const [found] = await natsDeadLetters(bucket.kv, consumer, { ids: [id] });
    printLetter(consumer, String(id), found?.letter, flags.json === true);
  });
}

export function replayFromNats(
  config: TributaryConfig,
  name: string,
  options: { ids: number[] | undefined; rate: number | undefined; by: string },
): Promise<void> {
  const module = replayModule(config, name);
  return withBucket(config, async (bucket) => {
    const letters = await natsDeadLetters(bucket.kv, name, {
      status: 'pending',
      ...(options.ids ? { ids: options.ids } : {}),
    });
    let changed = 0;
    const changedMeanwhile = (d: NatsDeadLetter) => {
      changed++;
      process.stderr.write(`dead letter ${d.letter.id} changed meanwhile (another replay or discard)\n`);
    };
    const result = await replay(name, module, letters, (d) => d.letter, options.rate, {
      claim: (d) => claimNatsDeadLetter(bucket.kv, d, options.by),
      replayed: async (d) => {
        if (!(await resolveNatsDeadLetter(bucket.kv, d, 'replayed', options.by))) changedMeanwhile(d);
      },
      failed: async (d, err) => {
        if (!(await recordNatsFailure(bucket.kv, d, err.message, err.stack))) changedMeanwhile(d);
      },
    });
    void output.write(
      `replayed ${result.ok} of ${letters.length}; ${result.failed} still failing${result.skipped ? `; ${result.skipped} skipped (replayed or resolved elsewhere)` : ''}${changed ? `; ${changed} changed meanwhile` : ''}\n`,
    );
    if (result.failed > 0) process.exitCode = 1;
  });
}

export function discardFromNats(
  config: TributaryConfig,
  name: string,
  options: { ids: number[] | undefined; by: string; note: string | undefined },
): Promise<void> {
  return withBucket(config, async (bucket) => {
    const letters = await natsDeadLetters(bucket.kv, name, {
      status: 'pending',
      ...(options.ids ? { ids: options.ids } : {}),
    });
    let n = 0;
    for (const d of letters)
      if (await resolveNatsDeadLetter(bucket.kv, d, 'discarded', options.by, options.note)) n++;
    void output.write(`discarded ${n} dead letter${n === 1 ? '' : 's'} of ${name} (by ${options.by})\n`);
  });
}
