/**
 * One catalogue of error codes (QOE_ERR_<AREA>_<WHAT>), with the HTTP status where one applies and
 * whether retrying can help. Third-party errors are wrapped with `cause`.
 */
export const ERRORS = {
  QOE_ERR_INGEST_VALIDATION: { status: 400, retriable: false, message: 'request body failed validation' },
  QOE_ERR_INGEST_MALFORMED_JSON: { status: 400, retriable: false, message: 'request body is not valid JSON' },
  QOE_ERR_INGEST_BODY_TOO_LARGE: { status: 413, retriable: false, message: 'request body exceeds the limit' },
  QOE_ERR_INGEST_UNSUPPORTED_MEDIA_TYPE: { status: 415, retriable: false, message: 'unsupported content type' },
  QOE_ERR_INGEST_OVERLOADED: { status: 503, retriable: true, message: 'ingest cannot accept events right now' },
  QOE_ERR_QUERY_BAD_PARAMETER: { status: 400, retriable: false, message: 'invalid query parameter' },
  QOE_ERR_QUERY_FAILED: { status: 502, retriable: true, message: 'metrics store query failed' },
  QOE_ERR_NOT_FOUND: { status: 404, retriable: false, message: 'not found' },
  QOE_ERR_NOT_READY: { status: 503, retriable: true, message: 'not ready' },
  QOE_ERR_BUS_FULL: { status: 503, retriable: true, message: 'bus partition is at its bound' },
  QOE_ERR_BUS_UNAVAILABLE: { status: 503, retriable: true, message: 'bus unavailable' },
  QOE_ERR_BUS_CLOSED: { status: 503, retriable: false, message: 'bus is closed' },
  QOE_ERR_STORE_UNAVAILABLE: { status: 503, retriable: true, message: 'store unavailable' },
  QOE_ERR_STORE_QUERY: { status: 500, retriable: false, message: 'store rejected the statement' },
  QOE_ERR_SCHEMA_REGISTRY_UNAVAILABLE: { status: 503, retriable: true, message: 'schema registry unreachable' },
  QOE_ERR_SCHEMA_REGISTRY_REJECTED: { status: 500, retriable: false, message: 'schema registry refused the request' },
  QOE_ERR_SCHEMA_NOT_REGISTERED: { status: 500, retriable: false, message: "record's schema is not registered for its topic" },
  QOE_ERR_SCHEMA_UNKNOWN_WRITER: { status: 500, retriable: false, message: 'record written with a schema this reader cannot resolve' },
  QOE_ERR_CONFIG_INVALID: { status: 500, retriable: false, message: 'invalid configuration' },
  QOE_ERR_INTERNAL: { status: 500, retriable: false, message: 'internal error' },
  QOE_ERR_LIVE_TOO_MANY_CLIENTS: { status: 503, retriable: true, message: 'the live stream is at its client bound' },
  QOE_ERR_STEERING_UNAUTHORIZED: { status: 401, retriable: false, message: 'a valid steering bearer token is required' },
  QOE_ERR_STEERING_FORBIDDEN: { status: 403, retriable: false, message: 'this token may not change the kill switch (admin token required)' },
  QOE_ERR_STEERING_BAD_REQUEST: { status: 400, retriable: false, message: 'invalid steering request' },
  QOE_ERR_STEERING_TOO_MANY_SUBSCRIBERS: { status: 503, retriable: true, message: 'steering feed is at its subscriber bound' },
  QOE_ERR_STEERING_SEQ_UNAVAILABLE: { status: 410, retriable: false, message: 'requested seq is not retained: re-snapshot' },
  QOE_ERR_STEERING_SLOW_CONSUMER: { status: 503, retriable: true, message: 'subscriber fell behind: reconnect with ?since=<last seq>' },
} as const;

export type ErrorCode = keyof typeof ERRORS;

export class QoeError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly retriable: boolean;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message?: string, opts: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(message ?? ERRORS[code].message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'QoeError';
    this.code = code;
    this.status = ERRORS[code].status;
    this.retriable = ERRORS[code].retriable;
    this.details = opts.details;
  }
}

export function isQoeError(err: unknown, code?: ErrorCode): err is QoeError {
  return err instanceof QoeError && (code === undefined || err.code === code);
}
