/**
 * Beacon validation, compiled once per app (never per request). The body is checked in two steps so
 * that a partial batch can be accepted: the envelope (events is an array of 1..MAX objects, dims valid,
 * nothing else) as the route's body validator, then each event on its own.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { beaconBatchSchema, type BeaconEvent, type JsonSchema } from './beacon-schema.js';

export type EventCheck = { ok: true; event: BeaconEvent } | { ok: false; field: string; message: string };

export interface BeaconValidators {
  /** ajv function for the envelope; `errors` is set when it returns false (fastify reads it). */
  envelope: ValidateFunction;
  /** Validates one event; `pointer` is its JSON pointer in the body (e.g. /events/3), prefixed to field. */
  event(value: unknown, pointer: string): EventCheck;
}

/** ajv options (strictRequired off: the if/then rules name properties declared by the parent): no coercion, no defaults, nothing removed: the validator never rewrites the body. */
export function createAjv(): Ajv {
  return new Ajv({ allErrors: false, strict: true, strictRequired: false, coerceTypes: false, useDefaults: false, removeAdditional: false });
}

function envelopeSchema(): JsonSchema {
  const events = beaconBatchSchema.properties?.events;
  if (events === undefined) throw new Error('beacon-batch.schema.json: properties.events missing');
  const s: JsonSchema = {
    ...beaconBatchSchema,
    properties: { ...beaconBatchSchema.properties, events: { ...events, items: { type: 'object' } } },
  };
  delete s.$id;
  return s;
}

export function createBeaconValidators(): BeaconValidators {
  const ajv = createAjv();
  ajv.addSchema(beaconBatchSchema);
  const eventFn = ajv.getSchema(`${beaconBatchSchema.$id ?? ''}#/definitions/event`);
  if (eventFn === undefined) throw new Error('beacon-batch.schema.json: definitions/event not compilable');
  const envelope = ajv.compile(envelopeSchema());
  return {
    envelope,
    event(value, pointer) {
      if (eventFn(value)) return { ok: true, event: value as BeaconEvent };
      return { ok: false, ...describeErrors(eventFn.errors, pointer) };
    },
  };
}

/** RFC 6901: `~` → `~0`, `/` → `~1`. */
export function escapePointer(token: string): string {
  return token.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** The first meaningful ajv error as { field (JSON pointer), message }; `if` wrappers are skipped. */
export function describeErrors(errors: ErrorObject[] | null | undefined, base = ''): { field: string; message: string } {
  const err = errors?.find((e) => e.keyword !== 'if') ?? errors?.[0];
  if (err === undefined) return { field: base, message: 'invalid value' };
  return describeError(err, base);
}

function describeError(err: ErrorObject, base: string): { field: string; message: string } {
  const at = base + err.instancePath;
  const params = err.params as Record<string, unknown>;
  if (err.keyword === 'required' && typeof params.missingProperty === 'string') {
    const field = `${at}/${escapePointer(params.missingProperty)}`;
    return { field, message: `${field}: required field is missing` };
  }
  if (err.keyword === 'additionalProperties' && typeof params.additionalProperty === 'string') {
    const field = `${at}/${escapePointer(params.additionalProperty)}`;
    return { field, message: `${field}: unknown field (additional properties are not allowed)` };
  }
  let message = `${at || '/'}: ${err.message ?? 'invalid value'}`;
  if (err.keyword === 'enum' && Array.isArray(params.allowedValues)) message += ` (${params.allowedValues.join(', ')})`;
  return { field: at, message };
}
