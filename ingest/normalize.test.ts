import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DIMENSIONS, EVENT_TYPES, type EventType } from '../schemas/events.js';
import { beaconDimsSchema, beaconEventSchema, MAX_EVENTS_PER_BATCH, beaconBatchSchema, type BeaconBatch, type JsonSchema } from './beacon-schema.js';
import { clientHash } from './client-hash.js';
import { mergeDims, normalizeBatch, normalizeEvent } from './normalize.js';
import { createBeaconValidators } from './validate.js';

const ctx = { receivedAtMs: 1_767_225_700_000, clientHash: 'abcdef0123456789' };

/** An arbitrary for one schema node, derived from its constraints (the subset the beacon schema uses). */
function arbFor(s: JsonSchema): fc.Arbitrary<unknown> {
  if (s.enum !== undefined) return fc.constantFrom(...s.enum);
  switch (s.type) {
    case 'string':
      if (s.pattern !== undefined) return fc.stringMatching(new RegExp(s.pattern));
      return fc.string({ unit: 'binary', minLength: s.minLength ?? 0, maxLength: s.maxLength ?? 200 });
    case 'integer':
      return fc.integer({ min: s.minimum ?? Number.MIN_SAFE_INTEGER, max: s.maximum ?? Number.MAX_SAFE_INTEGER });
    case 'boolean':
      return fc.boolean();
    default:
      throw new Error(`no arbitrary for schema type ${String(s.type)}`);
  }
}

function recordArb(s: JsonSchema, required: string[], overrides: Record<string, fc.Arbitrary<unknown>> = {}): fc.Arbitrary<Record<string, unknown>> {
  const props: Record<string, fc.Arbitrary<unknown>> = {};
  for (const [k, v] of Object.entries(s.properties ?? {})) props[k] = overrides[k] ?? arbFor(v);
  return fc.record(props, { requiredKeys: required });
}

/** Fields the schema's if/then rules require for an event type. */
function requiredFor(type: EventType): string[] {
  return (beaconEventSchema.allOf ?? [])
    .filter((rule) => rule.if?.properties?.type?.const === type)
    .flatMap((rule) => rule.then?.required ?? []);
}

const eventArb = fc
  .constantFrom(...EVENT_TYPES)
  .chain((type) => recordArb(beaconEventSchema, [...(beaconEventSchema.required ?? []), ...requiredFor(type)], { type: fc.constant(type) }));
const batchArb = fc.record(
  { events: fc.array(eventArb, { minLength: 1, maxLength: 8 }), dims: recordArb(beaconDimsSchema, []) },
  { requiredKeys: ['events'] },
);

describe('normalize', () => {
  it('maps every field, merges dims batch-level then event-level, asn to a decimal string', () => {
    const batch: BeaconBatch = {
      dims: { cdn: 'cdn-a', country: 'FR', asn: 3215, contentId: 'c1' },
      events: [
        { sessionId: 's1', seq: 0, ts: 1_767_225_600_000, type: 'play_request' },
        { sessionId: 's1', seq: 1, ts: 1_767_225_601_000, type: 'request', cdn: 'cdn-b', asn: 0, httpStatus: 404, ttfbMs: 10, ttlbMs: 20 },
      ],
    };
    const [a, b] = normalizeBatch(batch, ctx);
    expect(a).toEqual({
      sessionId: 's1',
      seq: 0,
      tsMs: 1_767_225_600_000,
      receivedAtMs: ctx.receivedAtMs,
      type: 'play_request',
      source: 'native',
      dims: { ...mergeDims(undefined, {}), cdn: 'cdn-a', country: 'FR', asn: '3215', contentId: 'c1' },
      bitrateKbps: null,
      playheadMs: null,
      droppedFrames: null,
      errorCode: null,
      errorFatal: null,
      httpStatus: null,
      ttfbMs: null,
      ttlbMs: null,
      startupMs: null,
      clientHash: ctx.clientHash,
    });
    expect(b?.dims).toMatchObject({ cdn: 'cdn-b', asn: '0', country: 'FR' });
    expect(b).toMatchObject({ httpStatus: 404, ttfbMs: 10, ttlbMs: 20 });
  });

  it('uses "" for dimensions sent nowhere and keeps 0 / false measures (not null)', () => {
    const e = normalizeEvent({ sessionId: 's', seq: 0, ts: 946_684_800_000, type: 'error', errorCode: 'x', errorFatal: false, droppedFrames: 0 }, undefined, ctx);
    for (const d of DIMENSIONS) expect(e.dims[d]).toBe('');
    expect(e.errorFatal).toBe(false);
    expect(e.droppedFrames).toBe(0);
  });

  it('client hash: keyed HMAC-SHA256, 16 hex chars, never the IP', () => {
    const h = clientHash('secret', '203.0.113.7');
    expect(h).toMatch(/^[0-9a-f]{16}$/);
    expect(h).toBe(clientHash('secret', '203.0.113.7'));
    expect(h).not.toBe(clientHash('other-secret', '203.0.113.7'));
    expect(h).not.toContain('203');
  });

  it('MAX_EVENTS_PER_BATCH is the schema bound', () => {
    expect(beaconBatchSchema.properties?.events?.maxItems).toBe(MAX_EVENTS_PER_BATCH);
  });

  it('property: any batch generated from the schema constraints validates and normalises', () => {
    const validators = createBeaconValidators();
    fc.assert(
      fc.property(batchArb, (body) => {
        expect(validators.envelope(body), JSON.stringify(validators.envelope.errors)).toBe(true);
        const events = body.events.map((e, i) => {
          const r = validators.event(e, `/events/${i}`);
          if (!r.ok) throw new Error(r.message);
          return r.event;
        });
        const batch: BeaconBatch = { events, dims: body.dims as BeaconBatch['dims'] };
        const out = normalizeBatch(batch, ctx);
        expect(out).toHaveLength(batch.events.length);
        out.forEach((e, i) => {
          const src = batch.events[i];
          expect(e.source).toBe('native');
          expect(e.tsMs).toBe(src?.ts);
          for (const d of DIMENSIONS) {
            const want = src?.[d] ?? batch.dims?.[d];
            expect(e.dims[d]).toBe(want === undefined ? '' : String(want));
          }
        });
      }),
      { numRuns: 200 },
    );
  });
});
