import { type MsgHdrs, headers as natsHeaders } from '@nats-io/nats-core';
import { LogError } from '../../core/errors.ts';

/**
 * Headers of the log's messages (docs/nats.md, "Message layout"). A record message holds `count`
 * records of one partition at offsets `base .. base+count-1`, as one row batch of a registered codec
 * (`records` for appended records, the producer's codec for a row batch kept whole). Every message
 * of an append carries the append's id and the stream sequence of its last message (`commit`): the
 * append is complete once that message exists with the same append id, and readers return nothing
 * of an append that is not.
 */
export const H = {
  append: 'Trib-Append',
  commit: 'Trib-Commit',
  base: 'Trib-Base',
  count: 'Trib-Count',
  /** Base offset of the append's first message on this partition: the end before the append. */
  from: 'Trib-From',
  codec: 'Trib-Codec',
  codecHeader: 'Trib-Codec-Header',
} as const;

export interface RecordMessage {
  readonly seq: number;
  readonly subject: string;
  readonly append: string;
  readonly commit: number;
  readonly base: number;
  readonly count: number;
  readonly from: number;
  readonly codec: string;
  readonly codecHeader: string;
  readonly data: Uint8Array;
}

export interface CommitInfo {
  readonly append: string;
  readonly commit: number;
}

export function recordHeaders(
  info: CommitInfo,
  base: number,
  count: number,
  from: number,
  codec: string,
  codecHeader: string,
): MsgHdrs {
  const h = natsHeaders();
  h.set(H.append, info.append);
  h.set(H.commit, String(info.commit));
  h.set(H.base, String(base));
  h.set(H.count, String(count));
  h.set(H.from, String(from));
  h.set(H.codec, codec);
  h.set(H.codecHeader, encodeURIComponent(codecHeader));
  return h;
}

export function checkpointHeaders(info: CommitInfo): MsgHdrs {
  const h = natsHeaders();
  h.set(H.append, info.append);
  h.set(H.commit, String(info.commit));
  return h;
}

export function commitInfo(header: MsgHdrs | undefined, seq: number, stream: string): CommitInfo {
  const append = header?.get(H.append) ?? '';
  const commit = Number(header?.get(H.commit));
  if (append === '' || !Number.isSafeInteger(commit)) {
    throw foreign(stream, seq);
  }
  return { append, commit };
}

export function decodeRecordMessage(
  msg: { seq: number; subject: string; header?: MsgHdrs; data: Uint8Array },
  stream: string,
): RecordMessage {
  const { append, commit } = commitInfo(msg.header, msg.seq, stream);
  const h = msg.header!;
  const base = Number(h.get(H.base));
  const count = Number(h.get(H.count));
  const from = Number(h.get(H.from));
  const codec = h.get(H.codec);
  if (!Number.isSafeInteger(base) || !Number.isSafeInteger(count) || count < 1 || codec === '') {
    throw foreign(stream, msg.seq);
  }
  return {
    seq: msg.seq,
    subject: msg.subject,
    append,
    commit,
    base,
    count,
    from: Number.isSafeInteger(from) ? from : base,
    codec,
    codecHeader: decodeURIComponent(h.get(H.codecHeader)),
    data: msg.data,
  };
}

function foreign(stream: string, seq: number): LogError {
  return new LogError(
    'LOG_CORRUPT',
    `Message ${seq} of stream ${stream} was not written by Tributary (its Trib-* headers are missing)`,
    { hint: 'Only Tributary may publish to the log stream; remove the message with `nats stream rmm`.' },
  );
}
