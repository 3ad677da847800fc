import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { CopyOut } from './copy-out.ts';

const message = (code: string, payload: string | Buffer) => {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const header = Buffer.alloc(5);
  header.write(code, 0);
  header.writeUInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
};

/** A socket as `pg` leaves it: one data listener (its parser), which here records what it gets. */
function connection() {
  const stream = new EventEmitter();
  const toPg: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => toPg.push(Buffer.from(chunk)));
  return { stream, toPg, query: (_text: string) => undefined };
}

const rows = ['1\talpha\n', '2\t\\N\n', `3\t${'x'.repeat(300)}\n`];
const copyPart = Buffer.concat([
  message('H', Buffer.from([0, 0, 2, 0, 0, 0, 0])),
  ...rows.map((r) => message('d', r)),
  message('c', ''),
]);
const tail = Buffer.concat([message('C', 'COPY 3\0'), message('Z', 'I')]);

describe('CopyOut', () => {
  it('gathers the rows across any split of the socket reads and gives the rest back to pg', async () => {
    const all = Buffer.concat([copyPart, tail]);
    for (let a = 1; a < all.length; a += 3) {
      for (const b of [a + 1, a + 4, a + 97, all.length]) {
        const c = connection();
        const copy = new CopyOut('copy (select 1) to stdout', 16);
        copy.submit(c);
        for (const piece of [all.subarray(0, a), all.subarray(a, b), all.subarray(b)])
          if (piece.length > 0) c.stream.emit('data', piece);
        expect(Buffer.concat(c.toPg).equals(tail), `split at ${a}, ${b}`).toBe(true);
        copy.handleReadyForQuery();
        const result = await copy.done;
        expect(result.count).toBe(3);
        expect(result.data.equals(Buffer.concat(rows.map((r) => message('d', r))))).toBe(true);
      }
    }
  });

  it('lets pg parse from a message it does not expect (a notice), rows arriving through pg', async () => {
    const c = connection();
    const copy = new CopyOut('copy (select 1) to stdout', 16);
    copy.submit(c);
    const notice = message('N', 'SNOTICE\0\0');
    c.stream.emit('data', Buffer.concat([message('H', Buffer.alloc(7)), notice, message('d', rows[0]!)]));
    expect(Buffer.concat(c.toPg).equals(Buffer.concat([notice, message('d', rows[0]!)]))).toBe(true);
    // pg's parser then hands each CopyData payload over.
    copy.handleCopyData({ chunk: Buffer.from(rows[0]!) });
    copy.handleReadyForQuery();
    expect((await copy.done).data.equals(message('d', rows[0]!))).toBe(true);
  });

  it('fails with the server error', async () => {
    const c = connection();
    const copy = new CopyOut('copy (select 1) to stdout', 16);
    copy.submit(c);
    copy.handleError(new Error('relation "nope" does not exist'));
    await expect(copy.done).rejects.toThrow(/nope/);
  });
});
