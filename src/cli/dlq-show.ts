/** `tributary dlq show`: prints one dead letter (the SQLite store's, or one read from a NATS log). */
import type { DeadLetter } from '../consumers/consumer-store.ts';
import { ConfigError } from '../core/errors.ts';
import { output } from './stdout-writer.ts';

/** `dlq show`: one dead letter (the SQLite store, or read from a NATS log). */
export function printLetter(
  consumer: string,
  id: string | undefined,
  letter: DeadLetter | undefined,
  json: boolean,
): void {
  if (!letter)
    throw new ConfigError(`${consumer} has no dead letter ${id}`, {
      hint: `tributary dlq list ${consumer}`,
    });
  if (json) {
    void output.write(`${JSON.stringify(letter, null, 2)}\n`);
    return;
  }
  const lines = [
    `id:        ${letter.id} (${letter.status}${letter.resolvedBy ? ` by ${letter.resolvedBy} ${new Date(letter.resolvedAt ?? 0).toISOString()}` : ''})`,
    `origin:    topic ${letter.topic}, partition ${letter.partition}, offset ${letter.offset} (group ${letter.group})`,
    `timestamp: ${new Date(letter.timestamp).toISOString()}`,
    `attempts:  ${letter.attempts}, first failed ${new Date(letter.firstFailedAt).toISOString()}, last ${new Date(letter.failedAt).toISOString()}`,
    ...(letter.note ? [`note:      ${letter.note}`] : []),
    `error:     ${letter.error}`,
    `key:       ${letter.key ?? 'null'}`,
    `headers:   ${JSON.stringify(letter.headers)}`,
    `value:\n${prettyJson(letter.value)}`,
    `stack:\n${letter.stack ?? '(none)'}`,
  ];
  void output.write(`${lines.join('\n')}\n`);
}

function prettyJson(text: string | null): string {
  if (text === null) return 'null';
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}
