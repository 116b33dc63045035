/**
 * A steering decision: the detector's output, published to qoe.steering.v1, stored for audit,
 * pushed over WebSocket and served as HLS/DASH content-steering manifests.
 * Versioned: schemas/steering-decision.schema.json (JSON) and schemas/steering-decision.avsc (Avro).
 */
export const DECISION_SCHEMA_VERSION = 1;

export type SteeringAction = 'demote' | 'restore' | 'neutral' | 'kill_switch';

export interface SteeringScope {
  /** ISO 3166-1 alpha-2. */
  country: string;
  /** '' = the whole country. */
  asn: string;
}

export interface DecisionReason {
  metric: 'vsf_rate' | 'rebuffer_ratio' | 'vst_p90_ms' | 'vpf_rate' | 'request_error_rate' | 'ttfb_p90_ms' | 'operator';
  /** The CDN the decision is about ('' for operator actions). */
  cdn: string;
  value: number;
  baseline: number;
  score: number;
  windowStartMs: number;
  windowMs: number;
  detail: string;
}

export interface SteeringDecision {
  version: typeof DECISION_SCHEMA_VERSION;
  id: string;
  /** Strictly increasing across all decisions of a deployment. */
  seq: number;
  issuedAtMs: number;
  scope: SteeringScope;
  /** CDN names, most preferred first. */
  priority: string[];
  action: SteeringAction;
  reason: DecisionReason;
  ttlMs: number;
}
