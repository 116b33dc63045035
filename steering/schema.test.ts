/**
 * steering-decision.schema.json (JSON, camelCase) and steering-decision.avsc (Avro, snake_case) must
 * describe the same record: checked field by field, both ways, nested records included; then a
 * decision round-trips JSON-valid → Avro → JSON-valid unchanged, and invalid ones are refused.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { projectPath } from '../lib/paths.js';
import { DECISION_SCHEMA_VERSION, type SteeringDecision } from './decision.js';
import { decodeDecision, encodeDecision, validateDecision } from './codec.js';

interface JsonProp {
  type?: string;
  enum?: string[];
  $ref?: string;
  items?: JsonProp;
  maximum?: number;
}
interface JsonObject {
  properties: Record<string, JsonProp>;
  required: string[];
}
type AvroType = string | { type: string; symbols?: string[]; items?: AvroType; fields?: AvroField[] };
interface AvroField {
  name: string;
  type: AvroType;
}

function readJson<T>(file: string): T {
  return JSON.parse(readFileSync(projectPath('schemas', file), 'utf8')) as T;
}

const jsonSchema = readJson<JsonObject & { definitions: Record<string, JsonObject> }>('steering-decision.schema.json');
const avro = readJson<{ fields: AvroField[] }>('steering-decision.avsc');

const snake = (s: string): string => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

function compare(path: string, json: JsonObject, fields: AvroField[]): string[] {
  const problems: string[] = [];
  const byName = new Map(fields.map((f) => [f.name, f]));
  const jsonNames = Object.keys(json.properties);
  for (const name of jsonNames) {
    const p = json.properties[name] ?? {};
    const f = byName.get(snake(name));
    if (f === undefined) {
      problems.push(`${path}${name}: missing in Avro`);
      continue;
    }
    if (!json.required.includes(name)) problems.push(`${path}${name}: optional in JSON but required in Avro`);
    const t = f.type;
    const avroKind = typeof t === 'string' ? t : t.type;
    const resolved = p.$ref === undefined ? p : { type: 'object', ref: p.$ref };
    switch (resolved.type) {
      case 'string':
        if (p.enum !== undefined) {
          const symbols = typeof t === 'object' ? (t.symbols ?? []) : [];
          if (avroKind !== 'enum' || JSON.stringify(symbols) !== JSON.stringify(p.enum)) problems.push(`${path}${name}: enum differs`);
        } else if (avroKind !== 'string') problems.push(`${path}${name}: string vs ${avroKind}`);
        break;
      case 'integer':
        if (avroKind !== 'long' && avroKind !== 'int') problems.push(`${path}${name}: integer vs ${avroKind}`);
        if (avroKind === 'int' && (p.maximum ?? Infinity) > 2 ** 31 - 1) problems.push(`${path}${name}: does not fit int`);
        break;
      case 'number':
        if (avroKind !== 'double') problems.push(`${path}${name}: number vs ${avroKind}`);
        break;
      case 'array':
        if (avroKind !== 'array' || typeof t !== 'object' || t.items !== 'string' || p.items?.type !== 'string') problems.push(`${path}${name}: array of strings expected`);
        break;
      case 'object': {
        const def = jsonSchema.definitions[(p.$ref ?? '').replace('#/definitions/', '')];
        if (def === undefined || typeof t !== 'object' || t.fields === undefined) problems.push(`${path}${name}: record expected`);
        else problems.push(...compare(`${path}${name}.`, def, t.fields));
        break;
      }
      default:
        problems.push(`${path}${name}: unsupported JSON type`);
    }
  }
  const expected = new Set(jsonNames.map(snake));
  for (const f of fields) if (!expected.has(f.name)) problems.push(`${path}${f.name}: Avro field not in JSON`);
  return problems;
}

const sample: SteeringDecision = {
  version: DECISION_SCHEMA_VERSION,
  id: '7c0e8f5e-1',
  seq: 2 ** 40,
  issuedAtMs: 1_763_980_000_123,
  scope: { country: 'US', asn: '7922' },
  priority: ['cdn-b', 'cdn-a'],
  action: 'demote',
  reason: { metric: 'rebuffer_ratio', cdn: 'cdn-a', value: 0.0825, baseline: 0.011, score: 6.25, windowStartMs: 1_763_979_990_000, windowMs: 10_000, detail: 'ratio 7.5× baseline for 3 windows' },
  ttlMs: 600_000,
};

describe('steering decision schemas', () => {
  it('JSON Schema and Avro agree field by field', () => {
    expect(compare('', jsonSchema, avro.fields)).toEqual([]);
  });

  it('the JSON Schema pins the version the TypeScript contract carries', () => {
    expect(jsonSchema.properties.version).toMatchObject({ const: DECISION_SCHEMA_VERSION });
  });

  it('a valid decision round-trips through Avro unchanged and stays valid', () => {
    expect(validateDecision(sample)).toEqual({ ok: true, decision: sample });
    const wire = encodeDecision(sample);
    expect([...wire.subarray(0, 2)]).toEqual([0xc3, 0x01]); // Avro single-object encoding header
    const back = decodeDecision(wire);
    expect(back).toEqual(sample);
    expect(validateDecision(back).ok).toBe(true);
  });

  it.each([
    ['lower-case country', { ...sample, scope: { country: 'us', asn: '' } }],
    ['unknown action', { ...sample, action: 'promote' }],
    ['unknown field', { ...sample, extra: 1 }],
    ['missing reason', { ...sample, reason: undefined }],
    ['version 2', { ...sample, version: 2 }],
  ])('refuses %s', (_name, value) => {
    expect(validateDecision(JSON.parse(JSON.stringify(value))).ok).toBe(false);
  });
});
