/**
 * The native beacon format: the JSON Schema in schemas/beacon-batch.schema.json (source of truth for
 * the HTTP body, published in /openapi.json) and the TypeScript shape of a body that passed it.
 */
import { readFileSync } from 'node:fs';
import { projectPath } from '../lib/paths.js';
import type { EventType, StreamType } from '../schemas/events.js';

/** Largest number of events in one POST /v1/beacons body (the schema's events.maxItems). */
export const MAX_EVENTS_PER_BATCH = 500;

/** The subset of JSON Schema draft-07 the beacon schema uses, enough to walk it without `any`. */
export interface JsonSchema {
  $schema?: string;
  $id?: string;
  $ref?: string;
  title?: string;
  description?: string;
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean;
  items?: JsonSchema;
  minItems?: number;
  maxItems?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  enum?: string[];
  const?: string;
  allOf?: JsonSchema[];
  if?: JsonSchema;
  then?: JsonSchema;
  definitions?: Record<string, JsonSchema>;
}

export const beaconBatchSchema = JSON.parse(
  readFileSync(projectPath('schemas', 'beacon-batch.schema.json'), 'utf8'),
) as JsonSchema;

function definition(name: string): JsonSchema {
  const s = beaconBatchSchema.definitions?.[name];
  if (s === undefined) throw new Error(`beacon-batch.schema.json: definitions/${name} missing`);
  return s;
}

/** The schema of one event (definitions/event). */
export const beaconEventSchema: JsonSchema = definition('event');
/** The schema of the batch-level dims object (definitions/dims). */
export const beaconDimsSchema: JsonSchema = definition('dims');

/** Replaces local `#/definitions/x` references by their target, for documents (OpenAPI) where they would not resolve. */
export function inlineRefs(s: JsonSchema, root: JsonSchema = beaconBatchSchema): JsonSchema {
  if (s.$ref !== undefined) {
    const name = s.$ref.replace(/^#\/definitions\//, '');
    const target = root.definitions?.[name];
    if (target === undefined) throw new Error(`unresolvable $ref ${s.$ref}`);
    return inlineRefs(target, root);
  }
  const out: JsonSchema = { ...s };
  delete out.definitions;
  delete out.$schema;
  delete out.$id;
  if (s.properties !== undefined) {
    out.properties = Object.fromEntries(Object.entries(s.properties).map(([k, v]) => [k, inlineRefs(v, root)]));
  }
  if (s.items !== undefined) out.items = inlineRefs(s.items, root);
  return out;
}

/** Dimension fields as sent (camelCase; asn is a JSON integer on the wire, a string once stored). */
export interface BeaconDims {
  cdn?: string;
  country?: string;
  asn?: number;
  contentId?: string;
  streamType?: StreamType;
  playerName?: string;
  playerVersion?: string;
  deviceType?: string;
  os?: string;
  browser?: string;
  custom1?: string;
  custom2?: string;
  custom3?: string;
}

/** One event that passed definitions/event. */
export interface BeaconEvent extends BeaconDims {
  sessionId: string;
  seq: number;
  ts: number;
  type: EventType;
  bitrateKbps?: number;
  playheadMs?: number;
  droppedFrames?: number;
  errorCode?: string;
  errorFatal?: boolean;
  httpStatus?: number;
  ttfbMs?: number;
  ttlbMs?: number;
  startupMs?: number;
}

/** A batch whose envelope and every event passed the schema. */
export interface BeaconBatch {
  events: BeaconEvent[];
  dims?: BeaconDims;
}
