/** The steering module's public surface, for lib/runtime.ts. */
export { createSteeringService } from './service.js';
export type { DecisionInput, KillSwitchState, SteeringService, SteeringServiceDeps, SteeringStats, SubmitOutcome } from './service.js';
export { createSteeringStream, STREAM_PATH, STREAM_MESSAGE_VERSION, CLOSE_SLOW_CONSUMER } from './stream.js';
export type { SteeringStream, StreamOptions, StreamStats } from './stream.js';
export { steeringRoutes, MANIFEST_CACHE_CONTROL } from './routes.js';
export { parseSteeringEnv, STEERING_ENV } from './config.js';
export type { SteeringConfig } from './config.js';
export { createDecisionLog } from './registry.js';
export type { DecisionLog, SinceResult } from './registry.js';
export { decodeDecision, encodeDecision, validateDecision } from './codec.js';
export { STEERING_ERRORS } from './errors.js';
