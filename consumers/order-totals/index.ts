/**
 * Example consumer, run by `tributary up` on the e-commerce demo: keeps the number of orders and
 * the revenue per status from the changes of `orders`, and logs a summary every 200 changes
 * (see it with `npx tributary logs order-totals -f`). A copy to start from: `tributary consumers
 * new <name>` scaffolds another.
 *
 * The totals live in memory, so a restarted replica starts counting again from the records it
 * is given; a real consumer would keep them in a table, with the `transactional` helper for an
 * exactly-once effect.
 */
import { defineConsumer, type Envelope } from 'tributary';

interface Order {
  id: number;
  customer_id: number;
  /** numeric(10,2), as text to keep it exact. */
  total_amount: string;
  status: string;
}

const cents = (amount: string | undefined) => Math.round(Number(amount ?? 0) * 100);
/** Last known status and amount per order id: updates carry no `before` image by default. */
const orders = new Map<number, { status: string; cents: number }>();
const byStatus = new Map<string, { orders: number; cents: number }>();
let changes = 0;

function apply(id: number, next: Order | null): void {
  const previous = orders.get(id);
  if (previous) move(previous.status, -1, -previous.cents);
  if (next) {
    const entry = { status: next.status, cents: cents(next.total_amount) };
    orders.set(id, entry);
    move(entry.status, 1, entry.cents);
  } else orders.delete(id);
}

function move(status: string, count: number, amount: number): void {
  const t = byStatus.get(status) ?? { orders: 0, cents: 0 };
  t.orders += count;
  t.cents += amount;
  byStatus.set(status, t);
}

export default defineConsumer<Envelope<Order>>({
  topics: ['tributary.public.orders'],
  replicas: 1,
  batch: { maxRecords: 200 },
  async handle(batch, ctx) {
    for (const record of batch) {
      const change = record.value;
      if (change === null) continue; // the tombstone after a delete
      const row = change.after ?? change.before;
      if (row) apply(row.id, change.op === 'd' ? null : change.after);
      ctx.metrics.increment(`orders_${change.op}`);
      changes++;
      if (changes % 200 === 0) {
        const totals = Object.fromEntries(
          [...byStatus].map(([status, t]) => [
            status,
            { orders: t.orders, revenue: (t.cents / 100).toFixed(2) },
          ]),
        );
        ctx.logger.info({ changes, totals }, 'order totals');
      }
    }
  },
});
