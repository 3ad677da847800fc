/**
 * The CopyData payloads of a replication stream that wait to be decoded, in arrival order.
 *
 * `pg`'s protocol parser hands out each payload as a view into its read buffer, and reuses that
 * buffer on its next socket read (it moves an incomplete message to the front, over the bytes of
 * messages it has already handed out). A stream emits the reads it has buffered one after the
 * other in one loop, so a payload still queued while the decoder waits for a slow event log was
 * overwritten (seen in CI as "unexpected replication message type 0x30" after a NATS leader was
 * killed). So the socket is paused at the first payload: the queue holds what the current read
 * brought, and the drain resumes the socket only when the queue is empty. A payload that arrives
 * with no socket to pause is copied.
 *
 * Copying every payload instead cost 15-60 MB more peak memory while capturing a 1,000,000-row
 * transaction (test/integration/resilience.test.ts), for nothing.
 */
export class CopyDataQueue {
  #chunks: Buffer[] = [];

  constructor(private readonly socket: () => NodeJS.ReadableStream | undefined) {}

  /** Queues `chunk` and stops reading the socket until the queue is drained. */
  push(chunk: Buffer): void {
    const socket = this.socket();
    if (socket) {
      socket.pause();
      this.#chunks.push(chunk);
    } else this.#chunks.push(Buffer.from(chunk));
  }

  /** Everything queued so far, oldest first; the queue is empty afterwards. */
  take(): Buffer[] {
    const chunks = this.#chunks;
    this.#chunks = [];
    return chunks;
  }

  get length(): number {
    return this.#chunks.length;
  }
}
