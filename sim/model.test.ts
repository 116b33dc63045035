import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { DIMENSIONS } from '../schemas/events.js';
import { generatePopulation, parseDegradation } from './model.js';
import { computeTruth } from './truth.js';
import { aggregateTruth, deriveMetrics } from './aggregate.js';

const START = 1_767_225_600_000;

describe('generatePopulation', () => {
  it('is deterministic: same seed ⇒ identical events and truth', () => {
    const a = generatePopulation({ views: 150, seed: 7, startMs: START, requests: true });
    const b = generatePopulation({ views: 150, seed: 7, startMs: START, requests: true });
    expect(a.map((v) => v.events)).toEqual(b.map((v) => v.events));
    expect(computeTruth(a)).toEqual(computeTruth(b));
    const c = generatePopulation({ views: 150, seed: 8, startMs: START, requests: true });
    expect(c.map((v) => v.events)).not.toEqual(a.map((v) => v.events));
  });

  it('keeps view i the same when the population grows', () => {
    const small = generatePopulation({ views: 10, seed: 3, startMs: START });
    const big = generatePopulation({ views: 40, seed: 3, startMs: START });
    expect(big.slice(0, 10).map((v) => v.events)).toEqual(small.map((v) => v.events));
  });

  const views = generatePopulation({ views: 400, seed: 11, startMs: START, requests: true });

  it('gives every view contiguous seq from 0, non-decreasing ts and one session id', () => {
    for (const { events, timeline } of views) {
      events.forEach((e, i) => {
        expect(e.seq).toBe(i);
        expect(e.sessionId).toBe(timeline.sessionId);
        if (i > 0) expect(e.ts).toBeGreaterThanOrEqual(events[i - 1]?.ts ?? 0);
      });
      expect(events.at(-1)?.ts).toBe(timeline.endMs);
    }
  });

  it('puts every known dimension on play_request, and only there', () => {
    for (const { events, timeline } of views) {
      const [first, ...rest] = events;
      expect(first?.type).toBe('play_request');
      for (const d of DIMENSIONS) {
        const expected = timeline.dims[d];
        const sent = first?.[d];
        expect(sent === undefined ? '' : String(sent)).toBe(expected);
      }
      const extra = rest.filter((e) => DIMENSIONS.some((d) => e[d] !== undefined));
      expect(extra).toEqual([]);
    }
  });

  it('emits events that pass the ingest JSON schema', () => {
    const schema: unknown = JSON.parse(readFileSync(new URL('../schemas/beacon-batch.schema.json', import.meta.url), 'utf8'));
    const ajv = new Ajv({ strict: false, allErrors: true });
    const validate = ajv.compile(schema as object);
    for (const { events } of views.slice(0, 100)) {
      for (let i = 0; i < events.length; i += 500) {
        const ok = validate({ events: events.slice(i, i + 500) });
        expect(validate.errors ?? [], JSON.stringify(validate.errors)).toEqual([]);
        expect(ok).toBe(true);
      }
    }
  });

  it('sends a heartbeat after every 10 s without another event, and nothing after a terminal event', () => {
    for (const { events, timeline } of views) {
      for (let i = 1; i < events.length; i++) {
        expect((events[i]?.ts ?? 0) - (events[i - 1]?.ts ?? 0)).toBeLessThanOrEqual(10_000);
      }
      const last = events.at(-1);
      const terminal = last?.type === 'ended' || last?.type === 'quit' || (last?.type === 'error' && last.errorFatal === true);
      expect(terminal).toBe(timeline.ending.kind !== 'abandoned');
      const terminals = events.filter((e) => e.type === 'ended' || e.type === 'quit' || e.errorFatal === true);
      expect(terminals.length).toBe(terminal ? 1 : 0);
    }
  });

  it('covers every outcome in a large enough population', () => {
    const kinds = new Set(views.map((v) => `${v.timeline.ending.kind}:${v.timeline.firstFrameMs !== null}`));
    for (const k of ['quit:true', 'quit:false', 'fatal:false', 'ended:true', 'abandoned:true']) expect(kinds).toContain(k);
    const preStart = (type: string) =>
      views.some((v) => v.events.findIndex((e) => e.type === type) < Math.max(0, v.events.findIndex((e) => e.type === 'first_frame')) && v.events.some((e) => e.type === type));
    expect(preStart('seeking')).toBe(true);
    expect(preStart('rebuffering')).toBe(true);
    const types = new Set(views.flatMap((v) => v.events.map((e) => e.type)));
    for (const t of ['play_request', 'first_frame', 'playing', 'paused', 'seeking', 'rebuffering', 'bitrate_change', 'heartbeat', 'error', 'request', 'ended', 'quit']) {
      expect(types).toContain(t);
    }
  });

  it('does not change the views when request events are switched on, except for requests and heartbeats', () => {
    const off = generatePopulation({ views: 50, seed: 5, startMs: START, requests: false });
    const on = generatePopulation({ views: 50, seed: 5, startMs: START, requests: true });
    const core = (t: (typeof off)[number]['timeline']) => ({ ...t, requests: [], endMs: 0, segments: t.segments.map((s) => ({ ...s, toMs: 0 })) });
    expect(on.map((v) => core(v.timeline))).toEqual(off.map((v) => core(v.timeline)));
  });
});

describe('--degrade', () => {
  it('parses the spec', () => {
    expect(parseDegradation('cdn=cdn-a,country=us,at=60000,rebuffer=5,startFail=0.3,startup=3,ttfb=4')).toEqual({
      cdn: 'cdn-a',
      country: 'US',
      atMs: 60_000,
      untilMs: null,
      rebuffer: 5,
      startFail: 0.3,
      startup: 3,
      ttfb: 4,
    });
    expect(() => parseDegradation('cdn')).toThrow(/key=value/);
    expect(() => parseDegradation('bogus=1')).toThrow(/unknown key/);
    expect(() => parseDegradation('startFail=2')).toThrow(/probability/);
  });

  it('worsens only the chosen cdn × country after the offset', () => {
    const degrade = [parseDegradation('cdn=cdn-a,country=US,at=300000,rebuffer=5,startFail=0.3,startup=3')];
    const views = generatePopulation({ views: 2000, seed: 9, startMs: START, degrade });
    const truth = computeTruth(views);
    const [before, after] = aggregateTruth(truth, ['cdn', 'country'], { dims: { cdn: 'cdn-a', country: 'US' }, fromMs: 0, toMs: START + 600_000, stepMs: 300_000 });
    const other = aggregateTruth(truth, [], { dims: { cdn: ['cdn-b', 'cdn-c'] }, toMs: START + 600_000 })[0];
    if (before === undefined || after === undefined || other === undefined) throw new Error('missing groups');
    expect(deriveMetrics(after).vsfRate ?? 0).toBeGreaterThan(0.2);
    expect(deriveMetrics(before).vsfRate ?? 1).toBeLessThan(0.1);
    expect(deriveMetrics(other).vsfRate ?? 1).toBeLessThan(0.1);
    expect(deriveMetrics(after).vstMeanMs ?? 0).toBeGreaterThan(2 * (deriveMetrics(before).vstMeanMs ?? Infinity));
  });
});
