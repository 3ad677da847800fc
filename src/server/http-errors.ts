import { TributaryError } from '../core/errors.ts';
import { statusOf } from './api-errors.ts';
import { BODY_LIMIT_BYTES } from './json-body.ts';

/** The stable code of an error answer with no library code, by HTTP status (docs/http-api.md). */
const CODES: Readonly<Record<number, string>> = {
  400: 'BAD_REQUEST',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  406: 'NOT_ACCEPTABLE',
  411: 'LENGTH_REQUIRED',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  431: 'HEADERS_TOO_LARGE',
};

/** Status, code and message of the JSON error answer to any error a request met. */
export function errorAnswer(error: unknown): { status: number; code: string; message: string } {
  const status = statusOf(error);
  if (error instanceof TributaryError) return { status, code: error.code, message: error.message };
  const code = CODES[status] ?? (status >= 500 ? 'INTERNAL' : 'BAD_REQUEST');
  const message =
    status === 413
      ? `the request body is larger than the limit of ${BODY_LIMIT_BYTES} bytes`
      : status === 415
        ? 'unsupported content type: send JSON with content-type: application/json'
        : (error as Error).message;
  return { status, code, message };
}
