/**
 * The HTTP body schema (beacon-batch.schema.json, definitions/event) and the bus record
 * (beacon-event.avsc) must describe the same event: checked field by field, both ways, plus a
 * normalise → Avro encode → decode round trip of the fixture batch.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { projectPath } from '../lib/paths.js';
import { normalizeBatch } from '../ingest/normalize.js';
import type { BeaconBatch } from '../ingest/beacon-schema.js';
import { decodeSessionEvent, encodeSessionEvent } from './codec.js';
import { DIMENSIONS, EVENT_TYPES, snakeCase } from './events.js';

interface JsonProp {
  type?: string;
  enum?: string[];
  minimum?: number;
  maximum?: number;
}
interface JsonObjectSchema {
  properties: Record<string, JsonProp>;
  required?: string[];
}
type AvroType = string | { type: string; symbols?: string[]; logicalType?: string } | AvroType[];
interface AvroField {
  name: string;
  type: AvroType;
  default?: unknown;
}

function readJson<T>(...parts: string[]): T {
  return JSON.parse(readFileSync(projectPath(...parts), 'utf8')) as T;
}

const batchSchema = readJson<{ definitions: { event: JsonObjectSchema; dims: JsonObjectSchema } }>('schemas', 'beacon-batch.schema.json');
const avroFields = readJson<{ fields: AvroField[] }>('schemas', 'beacon-event.avsc').fields;

/** Avro fields ingest adds on the server; the client never sends them. */
const SERVER_ADDED = new Set(['received_at_ms', 'source', 'client_hash']);
/** JSON fields whose Avro type differs on purpose: asn is a JSON integer, stored as its decimal string. */
const CONVERTED_TO_STRING = new Set(['asn']);
const DIMENSION_SET = new Set<string>(DIMENSIONS);

const INT32 = { min: -(2 ** 31), max: 2 ** 31 - 1 };
const LONG_SAFE = { min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER };

function avroName(jsonName: string): string {
  return jsonName === 'ts' ? 'ts_ms' : snakeCase(jsonName);
}

/** Splits an Avro type into (nullable, the non-null branch). */
function unwrap(t: AvroType): { nullable: boolean; base: AvroType } {
  if (!Array.isArray(t)) return { nullable: false, base: t };
  const rest = t.filter((x) => x !== 'null');
  const base = rest[0];
  if (rest.length !== 1 || base === undefined) throw new Error(`unsupported union ${JSON.stringify(t)}`);
  return { nullable: rest.length < t.length, base };
}

function primitive(t: AvroType): string {
  return typeof t === 'string' ? t : Array.isArray(t) ? 'union' : t.type;
}

function typeProblem(name: string, p: JsonProp, avroType: AvroType): string | undefined {
  const { base } = unwrap(avroType);
  const avro = primitive(base);
  if (CONVERTED_TO_STRING.has(name)) return avro === 'string' && p.type === 'integer' ? undefined : `${name}: expected integer → string conversion`;
  switch (p.type) {
    case 'string':
      if (avro === 'string') return undefined;
      if (avro === 'enum' && typeof base === 'object' && !Array.isArray(base)) {
        const symbols = new Set(base.symbols ?? []);
        const missing = (p.enum ?? []).filter((s) => !symbols.has(s));
        if (p.enum === undefined) return `${name}: free string cannot map to an Avro enum`;
        return missing.length === 0 ? undefined : `${name}: Avro enum lacks ${missing.join(', ')}`;
      }
      return `${name}: string vs Avro ${avro}`;
    case 'integer': {
      const range = avro === 'int' ? INT32 : avro === 'long' ? LONG_SAFE : undefined;
      if (range === undefined) return `${name}: integer vs Avro ${avro}`;
      if (p.minimum === undefined || p.maximum === undefined) return `${name}: integer without bounds`;
      if (p.minimum < range.min || p.maximum > range.max) return `${name}: [${p.minimum}, ${p.maximum}] does not fit Avro ${avro}`;
      return undefined;
    }
    case 'boolean':
      return avro === 'boolean' ? undefined : `${name}: boolean vs Avro ${avro}`;
    default:
      return `${name}: unsupported JSON type ${String(p.type)}`;
  }
}

/** Every disagreement between the JSON event schema and the Avro fields; [] when they agree. */
function agreementProblems(event: JsonObjectSchema, fields: AvroField[]): string[] {
  const problems: string[] = [];
  const byName = new Map(fields.map((f) => [f.name, f]));
  const required = new Set(event.required ?? []);
  for (const [name, prop] of Object.entries(event.properties)) {
    const field = byName.get(avroName(name));
    if (field === undefined) {
      problems.push(`${name}: no Avro field ${avroName(name)}`);
      continue;
    }
    const typeErr = typeProblem(name, prop, field.type);
    if (typeErr !== undefined) problems.push(typeErr);
    const { nullable } = unwrap(field.type);
    // Optional JSON fields need somewhere to say "absent": null for measures, '' for dimensions.
    if (required.has(name) && nullable) problems.push(`${name}: required in JSON but nullable in Avro`);
    if (!required.has(name) && !nullable && !(DIMENSION_SET.has(name) && field.default === '')) {
      problems.push(`${name}: optional in JSON but Avro has neither null nor default ''`);
    }
  }
  const jsonAvroNames = new Set(Object.keys(event.properties).map(avroName));
  for (const f of fields) {
    if (!SERVER_ADDED.has(f.name) && !jsonAvroNames.has(f.name)) problems.push(`Avro ${f.name}: no JSON field`);
  }
  return problems;
}

describe('beacon JSON Schema ↔ Avro agreement', () => {
  it('every JSON event field maps to a compatible Avro field and vice versa', () => {
    expect(agreementProblems(batchSchema.definitions.event, avroFields)).toEqual([]);
  });

  it('the checker does catch disagreements', () => {
    const event = structuredClone(batchSchema.definitions.event);
    event.properties.seq = { type: 'string' };
    event.properties.renditionId = { type: 'string' };
    if (event.properties.type) event.properties.type = { type: 'string', enum: ['playing', 'ad_start'] };
    const fields = avroFields.filter((f) => f.name !== 'os');
    expect(agreementProblems(event, fields).sort()).toEqual(
      [
        'os: no Avro field os',
        'renditionId: no Avro field rendition_id',
        'seq: string vs Avro long',
        'type: Avro enum lacks ad_start',
      ].sort(),
    );
  });

  it('the event type enum is EVENT_TYPES, and every dimension is in both event and batch dims', () => {
    expect(batchSchema.definitions.event.properties.type?.enum).toEqual([...EVENT_TYPES]);
    expect(Object.keys(batchSchema.definitions.dims.properties)).toEqual([...DIMENSIONS]);
    for (const d of DIMENSIONS) {
      expect(batchSchema.definitions.event.properties[d], d).toEqual(batchSchema.definitions.dims.properties[d]);
    }
  });

  it('round trip: fixture batch → normalise → Avro encode → decode is lossless', () => {
    const batch = readJson<BeaconBatch>('schemas', 'fixtures', 'native-batch.json');
    const events = normalizeBatch(batch, { receivedAtMs: 1_767_225_700_123, clientHash: '0123456789abcdef' });
    expect(events.length).toBeGreaterThan(10);
    for (const e of events) expect(decodeSessionEvent(encodeSessionEvent(e))).toEqual(e);
  });
});
