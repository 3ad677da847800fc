import { ConfigError } from '../../core/errors.ts';

/**
 * Names the NATS log uses: one stream per log and one KV bucket beside it (see docs/nats.md).
 *
 *   stream  TRIBUTARY_<NAME>          subjects trib.<name>.>
 *     trib.<name>.r.<topic>.<partition>   record messages (many records each)
 *     trib.<name>.c.<source>              checkpoint messages (the last message of an append)
 *     trib.<name>.l.<source>              leadership term markers of the writers of <source> (fences)
 *   bucket  tributary_<name>
 *     t.<topic>                           {"partitions":n}, written once when the topic is created
 *     o.<group>.<topic>.<partition>       a consumer group's committed offset
 *     leader.<source>                     the leadership term of the captures of <source>
 *
 * Topic, source and group names are escaped into one token that is valid both in a subject and in a
 * KV key: letters, digits, `_` and `-` stay, every other UTF-8 byte becomes `=XX`.
 */

const PLAIN = /^[A-Za-z0-9_-]$/;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function escapeToken(name: string): string {
  let out = '';
  for (const ch of name) {
    if (PLAIN.test(ch)) {
      out += ch;
      continue;
    }
    for (const byte of encoder.encode(ch)) out += `=${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

export function unescapeToken(token: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < token.length; i++) {
    if (token[i] === '=') {
      bytes.push(Number.parseInt(token.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(token.charCodeAt(i));
    }
  }
  return decoder.decode(new Uint8Array(bytes));
}

export class LogNames {
  readonly stream: string;
  readonly bucket: string;
  readonly #prefix: string;

  constructor(readonly name: string) {
    if (!/^[a-z0-9_-]{1,32}$/.test(name)) {
      throw new ConfigError(`log name ${JSON.stringify(name)} is not valid for NATS`, {
        hint: 'Use 1 to 32 lowercase letters, digits, `_` or `-` (it names the stream and the KV bucket).',
      });
    }
    this.stream = `TRIBUTARY_${name.toUpperCase().replaceAll('-', '_')}`;
    this.bucket = `tributary_${name.replaceAll('-', '_')}`;
    this.#prefix = `trib.${name}`;
  }

  get subjects(): string {
    return `${this.#prefix}.>`;
  }

  records(topic: string, partition: number): string {
    return `${this.#prefix}.r.${escapeToken(topic)}.${partition}`;
  }

  /** Every record subject of the log. */
  get recordSubjects(): string {
    return `${this.#prefix}.r.>`;
  }

  /** The topic of a record subject (`records(topic, n)`), or undefined for any other subject. */
  topicOf(subject: string): string | undefined {
    const head = `${this.#prefix}.r.`;
    if (!subject.startsWith(head)) return undefined;
    const rest = subject.slice(head.length);
    const dot = rest.lastIndexOf('.');
    return dot > 0 ? unescapeToken(rest.slice(0, dot)) : undefined;
  }

  checkpoint(source: string): string {
    return `${this.#prefix}.c.${escapeToken(source)}`;
  }

  /** Leadership terms of the captures writing `source` (see `NatsAppender.takeLeadership`). */
  leader(source: string): string {
    return `${this.#prefix}.l.${escapeToken(source)}`;
  }

  static leaderKey(source: string): string {
    return `leader.${escapeToken(source)}`;
  }

  /** The subject of a KV key in the bucket's stream. */
  kvSubject(key: string): string {
    return `$KV.${this.bucket}.${key}`;
  }

  /** The bucket's stream. */
  get kvStream(): string {
    return `KV_${this.bucket}`;
  }

  static topicKey(topic: string): string {
    return `t.${escapeToken(topic)}`;
  }

  static offsetKey(group: string, topic: string, partition: number): string {
    return `o.${escapeToken(group)}.${escapeToken(topic)}.${partition}`;
  }

  static groupKeys(group: string): string {
    return `o.${escapeToken(group)}.>`;
  }
}

/** `nats://host:port,host:port` (or several URLs joined by commas) → the servers to connect to. */
export function parseNatsUrl(url: string): string[] {
  const servers: string[] = [];
  const trimmed = url.trim();
  if (!trimmed.startsWith('nats://')) {
    throw new ConfigError(`log URL ${JSON.stringify(url)} is not a NATS URL`, {
      hint: 'Write it as nats://host:port or nats://host1:port,host2:port,host3:port',
    });
  }
  for (const part of trimmed.slice('nats://'.length).split(',')) {
    const hostPort = part
      .trim()
      .replace(/^nats:\/\//, '')
      .replace(/\/+$/, '');
    if (hostPort === '') continue;
    const match = /^(\[[^\]]+\]|[^:/]+)(?::(\d{1,5}))?$/.exec(hostPort);
    const port = Number(match?.[2] ?? 4222);
    if (!match || port < 1 || port > 65_535) {
      throw new ConfigError(`log URL ${JSON.stringify(url)} has an invalid server ${JSON.stringify(part)}`, {
        hint: 'Each server is host or host:port, e.g. nats://10.0.0.1:4222,10.0.0.2:4222',
      });
    }
    servers.push(`nats://${match[1]}:${port}`);
  }
  if (servers.length === 0) {
    throw new ConfigError(`log URL ${JSON.stringify(url)} names no server`, {
      hint: 'Write it as nats://host:port',
    });
  }
  return servers;
}
