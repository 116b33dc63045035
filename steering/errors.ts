import { ERRORS } from '../lib/errors.js';

/** The steering codes of the one catalogue (lib/errors.ts), used in HTTP bodies, WebSocket errors and close reasons. */
export const STEERING_ERRORS = {
  QOE_ERR_STEERING_UNAUTHORIZED: ERRORS.QOE_ERR_STEERING_UNAUTHORIZED,
  QOE_ERR_STEERING_FORBIDDEN: ERRORS.QOE_ERR_STEERING_FORBIDDEN,
  QOE_ERR_STEERING_BAD_REQUEST: ERRORS.QOE_ERR_STEERING_BAD_REQUEST,
  QOE_ERR_STEERING_TOO_MANY_SUBSCRIBERS: ERRORS.QOE_ERR_STEERING_TOO_MANY_SUBSCRIBERS,
  QOE_ERR_STEERING_SEQ_UNAVAILABLE: ERRORS.QOE_ERR_STEERING_SEQ_UNAVAILABLE,
  QOE_ERR_STEERING_SLOW_CONSUMER: ERRORS.QOE_ERR_STEERING_SLOW_CONSUMER,
} as const;

export type SteeringErrorCode = keyof typeof STEERING_ERRORS;

export interface SteeringErrorBody {
  error: { code: SteeringErrorCode; message: string };
}

export function steeringErrorBody(code: SteeringErrorCode, message?: string): SteeringErrorBody {
  return { error: { code, message: message ?? STEERING_ERRORS[code].message } };
}
