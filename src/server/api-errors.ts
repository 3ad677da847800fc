import { TributaryError } from '../core/errors.ts';

/** An error the API answers with a given HTTP status (404 unknown thing, 503 part not running...). */
export class ApiError extends TributaryError {
  readonly status: number;
  constructor(status: number, code: string, message: string, options: { hint?: string } = {}) {
    super(code, message, options);
    this.status = status;
  }
}

export function notFound(what: string): ApiError {
  return new ApiError(404, 'NOT_FOUND', what);
}

export function unavailable(part: string, why: string): ApiError {
  return new ApiError(503, 'UNAVAILABLE', `${part} is not available: ${why}`);
}

/** HTTP status of an error thrown by a route or by a part of the pipeline it called. */
export function statusOf(error: unknown): number {
  if (error instanceof ApiError) return error.status;
  const validation = (error as { validation?: unknown; statusCode?: number }).validation;
  if (validation) return 400;
  if (error instanceof TributaryError) {
    if (/NOT_FOUND|UNKNOWN|MISSING/.test(error.code)) return 404;
    if (/INVALID|BAD_REQUEST|NOT_CAPTURED|CONDITION/.test(error.code)) return 400;
    if (/CONFLICT|STATE/.test(error.code)) return 409;
    return error.retryable ? 503 : 500;
  }
  const statusCode = (error as { statusCode?: number }).statusCode;
  return typeof statusCode === 'number' && statusCode >= 400 && statusCode < 600 ? statusCode : 500;
}
