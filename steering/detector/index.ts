/**
 * The steering detector: a pure, synchronous core. Feed it qoe.metrics.v1 records with observe(),
 * call evaluate() with the watermark; it returns the SteeringDecisions to publish. No I/O, no clock.
 */
export {
  DEFAULT_DETECTOR_CONFIG, DEFAULT_METRIC_RULES, DETECTOR_METRICS, resolveDetectorConfig,
  type DetectorConfig, type DetectorConfigInput, type DetectorMetric, type MetricRule,
} from './config.js';
export { observe, type ObserveOutcome } from './observe.js';
export { evaluate } from './evaluate.js';
export {
  createDetectorState, currentPriority, neutralPriorityFor, scopeKey,
  type DetectorState, type DetectorStats, type ScopeState,
} from './state.js';
export {
  cusumUpdate, ewmaAlphaForSpan, ewmaUpdate, pearsonDispersion, poissonExcessZ, rateRatioZ, robustZ, MAD_TO_SIGMA, type RobustZ, type RobustZOptions,
} from './stats.js';
