/**
 * The HTTP error contract: every error is `{ error: { code, message, field?, details? } }` with the
 * status from lib/errors.ts. Fastify's own errors (content-type parser, body limit, schema validation)
 * are mapped here so that bad input never yields a 5xx.
 */
import type { ErrorObject } from 'ajv';
import { ERRORS, isQoeError, type ErrorCode } from '../lib/errors.js';
import { describeErrors } from './validate.js';

export interface ErrorBody {
  error: { code: ErrorCode; message: string; field?: string; details?: Record<string, unknown> };
}

export interface HttpError {
  status: number;
  body: ErrorBody;
  /** Seconds for a Retry-After header (retriable errors only). */
  retryAfterS?: number;
}

export function httpError(code: ErrorCode, message?: string, extra: { field?: string; details?: Record<string, unknown> } = {}): HttpError {
  const error: ErrorBody['error'] = { code, message: message ?? ERRORS[code].message };
  if (extra.field !== undefined) error.field = extra.field;
  if (extra.details !== undefined) error.details = extra.details;
  const out: HttpError = { status: ERRORS[code].status, body: { error } };
  if (ERRORS[code].retriable && ERRORS[code].status === 503) out.retryAfterS = 1;
  return out;
}

interface FrameworkError {
  code?: unknown;
  statusCode?: unknown;
  validation?: unknown;
  validationContext?: unknown;
  message?: unknown;
}

const MALFORMED_JSON = new Set(['FST_ERR_CTP_INVALID_JSON_BODY', 'FST_ERR_CTP_EMPTY_JSON_BODY']);

/** Maps anything a handler, hook or fastify itself threw to the error contract. */
export function toHttpError(err: unknown, opts: { bodyLimitBytes: number }): HttpError {
  if (isQoeError(err)) {
    const out = httpError(err.code, err.message, err.details === undefined ? {} : { details: err.details });
    if (err.retriable && out.retryAfterS === undefined && err.status === 503) out.retryAfterS = 1;
    return out;
  }
  const e = (typeof err === 'object' && err !== null ? err : {}) as FrameworkError;
  const code = typeof e.code === 'string' ? e.code : '';
  const status = typeof e.statusCode === 'number' ? e.statusCode : 500;
  if (Array.isArray(e.validation)) {
    const { field, message } = describeErrors(e.validation as ErrorObject[]);
    // Plugins' routes (e.g. GET /v1/metrics) validate query strings and params with fastify's own ajv.
    const code = e.validationContext === 'body' || e.validationContext === undefined ? 'QOE_ERR_INGEST_VALIDATION' : 'QOE_ERR_QUERY_BAD_PARAMETER';
    return httpError(code, message, { field });
  }
  if (MALFORMED_JSON.has(code) || (err instanceof SyntaxError && status === 400)) {
    return httpError('QOE_ERR_INGEST_MALFORMED_JSON');
  }
  if (code === 'FST_ERR_CTP_BODY_TOO_LARGE' || status === 413) {
    return httpError('QOE_ERR_INGEST_BODY_TOO_LARGE', `request body exceeds ${opts.bodyLimitBytes} bytes`, {
      details: { limitBytes: opts.bodyLimitBytes },
    });
  }
  if (code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' || status === 415) {
    return httpError('QOE_ERR_INGEST_UNSUPPORTED_MEDIA_TYPE', 'unsupported content type (use application/json or text/plain)');
  }
  if (status === 404) return httpError('QOE_ERR_NOT_FOUND');
  if (status >= 400 && status < 500) {
    // Any other client error fastify raises (bad content-length, bad URL, ...): still the caller's fault.
    return httpError('QOE_ERR_INGEST_VALIDATION', typeof e.message === 'string' ? e.message : undefined);
  }
  return httpError('QOE_ERR_INTERNAL');
}
