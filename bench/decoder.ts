/**
 * Micro-benchmark of the pgoutput decoder: ~1,000,000 Insert messages of an 8-column row, decoded
 * from one buffer holding them back to back (as a replication chunk would). Prints the median messages/s of 5 rounds.
 * Run: npx tsx bench/decoder.ts [messages]
 */
import { PgOutputDecoder } from '../src/source/postgres/pgoutput-decoder.ts';
import { TypeRegistry } from '../src/source/postgres/type-registry.ts';

const MESSAGES = Number(process.argv[2] ?? 1_000_000);
const PER_BUFFER = 1000;
const ROUNDS = 5;

const columns: [name: string, typeOid: number][] = [
  ['id', 20],
  ['customer_id', 23],
  ['email', 25],
  ['status', 1043],
  ['total', 1700],
  ['paid', 16],
  ['created_at', 1184],
  ['token', 2950],
];

function cstring(text: string): Buffer {
  return Buffer.concat([Buffer.from(text), Buffer.from([0])]);
}

function int(bytes: number, value: number): Buffer {
  const b = Buffer.alloc(bytes);
  b.writeIntBE(value, 0, bytes);
  return b;
}

function insertMessage(id: number): Buffer {
  const values = [
    String(id),
    String(id % 5000),
    `customer${id % 5000}@example.com`,
    'shipped',
    `${id % 1000}.99`,
    id % 2 ? 't' : 'f',
    '2024-06-01 12:34:56.789012+00',
    'f47ac10b-58cc-4372-a567-0e02b2c3d479',
  ];
  const parts = [Buffer.from('I'), int(4, 16384), Buffer.from('N'), int(2, values.length)];
  for (const v of values) {
    const bytes = Buffer.from(v);
    parts.push(Buffer.from('t'), int(4, bytes.length), bytes);
  }
  return Buffer.concat(parts);
}

const relationMessage = Buffer.concat([
  Buffer.from('R'),
  int(4, 16384),
  cstring('public'),
  cstring('orders'),
  Buffer.from('d'),
  int(2, columns.length),
  ...columns.flatMap(([name, oid], i) => [int(1, i === 0 ? 1 : 0), cstring(name), int(4, oid), int(4, -1)]),
]);

const decoder = new PgOutputDecoder(new TypeRegistry());
const relation = decoder.decode(relationMessage, 0, relationMessage.length, 0n);
if (Array.isArray(relation) || relation.kind !== 'relation') throw new Error('expected a relation');
decoder.addRelation(relation.relation);

const messages = Array.from({ length: PER_BUFFER }, (_, i) => insertMessage(i + 1));
const chunk = Buffer.concat(messages);
const bounds: number[] = [];
let offset = 0;
for (const m of messages) {
  bounds.push(offset, offset + m.length);
  offset += m.length;
}

function run(count: number): number {
  let checksum = 0;
  for (let n = 0; n < count; n += PER_BUFFER) {
    for (let i = 0; i < bounds.length; i += 2) {
      const decoded = decoder.decode(chunk, bounds[i]!, bounds[i + 1]!, BigInt(n + i));
      if (!Array.isArray(decoded) && decoded.kind === 'change') checksum += decoded.event.after?.length ?? 0;
    }
  }
  return checksum;
}

run(200_000); // warm-up, lets the JIT settle
// Several rounds, since one run on a shared machine varies by tens of percent; the median is reported.
const rates: number[] = [];
let checksum = 0;
for (let round = 0; round < ROUNDS; round++) {
  const started = process.hrtime.bigint();
  checksum += run(MESSAGES);
  rates.push(MESSAGES / (Number(process.hrtime.bigint() - started) / 1e9));
}
rates.sort((a, b) => a - b);
const median = rates[Math.floor(ROUNDS / 2)]!;
const bytesPerMessage = chunk.length / PER_BUFFER;
console.log(
  `decoded ${ROUNDS} x ${MESSAGES.toLocaleString('en')} inserts (8 columns, ${bytesPerMessage.toFixed(0)} bytes each): ` +
    `median ${Math.round(median).toLocaleString('en')} messages/s (${((median * bytesPerMessage) / 1e6).toFixed(0)} MB/s), ` +
    `min ${Math.round(rates[0]!).toLocaleString('en')}, max ${Math.round(rates[ROUNDS - 1]!).toLocaleString('en')} ` +
    `(checksum ${checksum})`,
);
