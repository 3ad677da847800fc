import type Database from 'better-sqlite3';
import type pg from 'pg';
import { describe, expect, expectTypeOf, it } from 'vitest';
import {
  CONSUMER_DEFINITION,
  type ConsumerRecord,
  defineConsumer,
  type Envelope,
  type UnwrappedRow,
} from './define-consumer.ts';
import { postgresTarget, sqliteTarget } from './transactional.ts';

interface Order {
  id: number;
  total: string;
}

describe('defineConsumer', () => {
  it('types the record value after the envelope and ctx.tx after the target', () => {
    const debezium = defineConsumer<Envelope<Order>>({
      topics: ['shop.public.orders'],
      handle(batch, ctx) {
        expectTypeOf(batch[0]!.value!.after).toEqualTypeOf<Order | null>();
        expectTypeOf(batch[0]!.value!.op).toEqualTypeOf<'c' | 'u' | 'd' | 'r' | 't' | 'm'>();
        expectTypeOf(ctx.tx).toEqualTypeOf<undefined>();
        // @ts-expect-error: not a column of Order
        void batch[0]!.value!.after!.missing;
      },
    });
    expect(debezium[CONSUMER_DEFINITION]).toBe(true);

    defineConsumer<UnwrappedRow<Order>>({
      topics: ['t'],
      format: 'unwrap',
      handle(batch) {
        expectTypeOf(batch[0]!.value!.total).toEqualTypeOf<string>();
        expectTypeOf(batch[0]!.value!.__deleted).toEqualTypeOf<'true' | 'false'>();
      },
    });

    defineConsumer({
      topics: ['t'],
      transactional: postgresTarget('postgres://localhost/x'),
      async handle(batch: readonly ConsumerRecord<Envelope<Order>>[], ctx) {
        expectTypeOf(ctx.tx).toEqualTypeOf<pg.PoolClient>();
        void batch;
      },
    });

    defineConsumer({
      topics: ['t'],
      transactional: sqliteTarget('/tmp/x.db'),
      handle(_batch, ctx) {
        expectTypeOf(ctx.tx).toEqualTypeOf<Database.Database>();
      },
    });
  });
});
