/** Response schemas of the ingest routes: they document the contract in /openapi.json and serialize replies. */

export const errorBodySchema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'string', description: 'stable error code, QOE_ERR_<AREA>_<WHAT>' },
        message: { type: 'string' },
        field: { type: 'string', description: 'JSON pointer to the offending field, when known' },
        details: { type: 'object', additionalProperties: true },
      },
    },
  },
} as const;

export const rejectedListSchema = {
  type: 'array',
  description: 'events that failed validation, by index in the batch; the others were accepted',
  items: {
    type: 'object',
    required: ['index', 'code', 'field', 'message'],
    properties: {
      index: { type: 'integer' },
      code: { type: 'string' },
      field: { type: 'string' },
      message: { type: 'string' },
    },
  },
} as const;

export const acceptedBodySchema = {
  type: 'object',
  required: ['accepted', 'rejected'],
  properties: {
    accepted: { type: 'integer', description: 'events published' },
    rejected: rejectedListSchema,
  },
} as const;

/** 400 is either a request-level error, or (every event invalid) the error plus the rejected list. */
export const badRequestBodySchema = {
  type: 'object',
  required: ['error'],
  properties: {
    ...errorBodySchema.properties,
    accepted: { type: 'integer' },
    rejected: rejectedListSchema,
  },
} as const;

export const statusBodySchema = {
  type: 'object',
  required: ['status'],
  properties: { status: { type: 'string' } },
} as const;
