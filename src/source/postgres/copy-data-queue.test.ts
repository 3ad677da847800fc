import { PassThrough } from 'node:stream';
import { parse } from 'pg-protocol';
import { describe, expect, it } from 'vitest';
import { CopyDataQueue } from './copy-data-queue.ts';

/** A CopyData ('d') frame of the wire protocol around `payload`. */
function copyData(payload: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.write('d', 0);
  header.writeUInt32BE(payload.length + 4, 1);
  return Buffer.concat([header, payload]);
}

describe('CopyDataQueue', () => {
  it('keeps queued payloads intact: the reads buffered after the first are parsed only once the queue is drained', async () => {
    const first = Buffer.concat([Buffer.from('w'), Buffer.alloc(999, 0x41)]);
    const second = Buffer.concat([Buffer.from('k'), Buffer.alloc(99, 0x30)]);
    const frameA = copyData(first);
    const frameB = copyData(second);
    // One socket read brings frame A and the start of frame B, the next one the rest of B: parsing
    // the second moves B's start to the front of the first read's buffer, where A's bytes are.
    const read1 = Buffer.concat([frameA, frameB.subarray(0, 50)]);
    const read2 = Buffer.from(frameB.subarray(50));

    const socket = new PassThrough();
    // Both reads are buffered before the parser sees the first: the stream emits them in one loop.
    socket.write(read1);
    socket.write(read2);
    const queue = new CopyDataQueue(() => socket);
    let seen = 0;
    const arrived: Array<() => void> = [];
    void parse(socket, (message) => {
      if (message.name !== 'copyData') return;
      queue.push((message as unknown as { chunk: Buffer }).chunk);
      seen++;
      arrived.shift()?.();
    });
    const next = () => new Promise<void>((resolve) => arrived.push(resolve));

    await next();
    await new Promise((resolve) => setImmediate(resolve));
    expect(socket.isPaused()).toBe(true);
    expect(seen).toBe(1);
    const [a] = queue.take();
    expect(a?.equals(first)).toBe(true);

    const wait = next();
    socket.resume();
    await wait;
    expect(seen).toBe(2);
    const [b] = queue.take();
    expect(b?.equals(second)).toBe(true);
    expect(queue.length).toBe(0);
  });
});
