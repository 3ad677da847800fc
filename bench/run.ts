/**
 * `npm run bench`: the catch-up benchmark against its references (pg_recvlogical, the
 * pg-logical-replication library), on a fresh throwaway cluster. See bench/README.md.
 *
 *   npm run bench -- [--rows 1000000] [--txs 100000] [--only A|B] [--pg 15|18] [--profile] [--non-durable] [--cold] [--nats]
 */
import { parseArgs } from 'node:util';
import { runCatchUp } from './capture/catch-up.ts';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '1000000' },
    txs: { type: 'string', default: '100000' },
    only: { type: 'string' },
    pg: { type: 'string', default: '15' },
    profile: { type: 'boolean', default: false },
    'non-durable': { type: 'boolean', default: false },
    cold: { type: 'boolean', default: false },
    nats: { type: 'boolean', default: false },
  },
});

function positive(name: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got ${text}`);
  return n;
}

const only = values.only?.toUpperCase();
if (only !== undefined && only !== 'A' && only !== 'B')
  throw new Error(`--only must be A or B, got ${values.only}`);
const version = Number(values.pg);
if (version !== 15 && version !== 18) throw new Error(`--pg must be 15 or 18, got ${values.pg}`);

await runCatchUp({
  rows: positive('rows', values.rows),
  txs: positive('txs', values.txs),
  only,
  pg: version,
  profile: values.profile,
  nonDurable: values['non-durable'],
  cold: values.cold,
  nats: values.nats,
});
