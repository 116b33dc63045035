/**
 * SteeringDecision at its boundaries: Avro (qoe.steering.v1, snake_case, schemas/steering-decision.avsc)
 * and JSON (WebSocket/HTTP, schemas/steering-decision.schema.json, validated by one ajv function
 * compiled at import, never per message).
 */
import { readFileSync } from 'node:fs';
import { Ajv, type ErrorObject } from 'ajv';
import { loadAvroType } from '../schemas/codec.js';
import { createAvroCodec } from '../schemas/framing.js';
import { projectPath } from '../lib/paths.js';
import { DECISION_SCHEMA_VERSION, type DecisionReason, type SteeringAction, type SteeringDecision } from './decision.js';

export const steeringDecisionAvroType = loadAvroType('steering-decision.avsc');

export const steeringDecisionJsonSchema: Record<string, unknown> = JSON.parse(
  readFileSync(projectPath('schemas', 'steering-decision.schema.json'), 'utf8'),
) as Record<string, unknown>;

const ajv = new Ajv({ allErrors: false, strict: true, coerceTypes: false, useDefaults: false, removeAdditional: false });
const validateFn = ajv.compile<SteeringDecision>(steeringDecisionJsonSchema);

export type DecisionCheck = { ok: true; decision: SteeringDecision } | { ok: false; message: string };

function describe(errors: ErrorObject[] | null | undefined): string {
  const e = errors?.[0];
  return e === undefined ? 'invalid decision' : `${e.instancePath || '/'} ${e.message ?? 'is invalid'}`;
}

/** Checks a value against steering-decision.schema.json. */
export function validateDecision(value: unknown): DecisionCheck {
  if (validateFn(value)) return { ok: true, decision: value };
  return { ok: false, message: describe(validateFn.errors) };
}

interface AvroScope {
  country: string;
  asn: string;
}
interface AvroReason {
  metric: DecisionReason['metric'];
  cdn: string;
  value: number;
  baseline: number;
  score: number;
  window_start_ms: number;
  window_ms: number;
  detail: string;
}
export interface AvroSteeringDecision {
  version: number;
  id: string;
  seq: number;
  issued_at_ms: number;
  scope: AvroScope;
  priority: string[];
  action: SteeringAction;
  reason: AvroReason;
  ttl_ms: number;
}

export function decisionToAvro(d: SteeringDecision): AvroSteeringDecision {
  const r = d.reason;
  return {
    version: d.version,
    id: d.id,
    seq: d.seq,
    issued_at_ms: d.issuedAtMs,
    scope: { country: d.scope.country, asn: d.scope.asn },
    priority: [...d.priority],
    action: d.action,
    reason: {
      metric: r.metric, cdn: r.cdn, value: r.value, baseline: r.baseline, score: r.score,
      window_start_ms: r.windowStartMs, window_ms: r.windowMs, detail: r.detail,
    },
    ttl_ms: d.ttlMs,
  };
}

export function decisionFromAvro(rec: AvroSteeringDecision): SteeringDecision {
  const r = rec.reason;
  if (rec.version !== DECISION_SCHEMA_VERSION) throw new Error(`steering decision version ${rec.version} is not supported`);
  return {
    version: DECISION_SCHEMA_VERSION,
    id: rec.id,
    seq: rec.seq,
    issuedAtMs: rec.issued_at_ms,
    scope: { country: rec.scope.country, asn: rec.scope.asn },
    priority: [...rec.priority],
    action: rec.action,
    reason: {
      metric: r.metric, cdn: r.cdn, value: r.value, baseline: r.baseline, score: r.score,
      windowStartMs: r.window_start_ms, windowMs: r.window_ms, detail: r.detail,
    },
    ttlMs: rec.ttl_ms,
  };
}

/** qoe.steering.v1 records: Avro single-object encoding (schemas/framing.ts), like every bus record. */
export const decisionCodec = createAvroCodec<AvroSteeringDecision>(steeringDecisionAvroType);

export function encodeDecision(d: SteeringDecision): Buffer {
  return decisionCodec.encode(decisionToAvro(d));
}

export function decodeDecision(buf: Buffer): SteeringDecision {
  return decisionFromAvro(decisionCodec.decode(buf));
}

/** Bus key: every decision of a scope lands in one partition, in order. */
export function scopeKey(scope: { country: string; asn: string }): string {
  return `${scope.country}/${scope.asn}`;
}
