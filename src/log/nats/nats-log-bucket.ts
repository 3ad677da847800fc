import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/nats-core';
import { LogError } from '../../core/errors.ts';
import { LogNames, parseNatsUrl } from './nats-names.ts';
import { connectNats, openBucket } from './nats-setup.ts';

/**
 * The KV bucket beside a NATS log's stream, opened for the consumer state kept there (offsets,
 * partition owners, members, dead letters; see docs/nats.md). The capture creates the bucket with
 * the stream; until then `open` waits (up to `waitMs`), as a consumer started before the capture.
 */
export class NatsLogBucket {
  readonly kv: KV;
  readonly #nc: NatsConnection;

  private constructor(nc: NatsConnection, kv: KV) {
    this.#nc = nc;
    this.kv = kv;
  }

  static async open(
    ref: { readonly url: string; readonly name: string },
    options: { waitMs?: number; signal?: AbortSignal } = {},
  ): Promise<NatsLogBucket> {
    const servers = parseNatsUrl(ref.url);
    const names = new LogNames(ref.name);
    const nc = await connectNats(servers, 5_000);
    const until = Date.now() + (options.waitMs ?? 0);
    try {
      for (;;) {
        const kv = await openBucket(
          nc,
          names,
          { replicas: 1, storage: 'file', maxAgeMs: 0, maxBytes: 0 },
          false,
        ).catch((error: unknown) => {
          if (Date.now() >= until) throw error;
          return undefined;
        });
        if (kv) return new NatsLogBucket(nc, kv);
        if (Date.now() >= until || options.signal?.aborted) {
          throw new LogError('LOG_NOT_FOUND', `The NATS log ${ref.name} at ${ref.url} does not exist yet`, {
            hint: 'Start the capture (`tributary run --log nats://...`), which creates the stream and its bucket, or check log.nats.name.',
          });
        }
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    } catch (error) {
      await nc.close().catch(() => undefined);
      throw error;
    }
  }

  async close(): Promise<void> {
    await this.#nc.close().catch(() => undefined);
  }
}
