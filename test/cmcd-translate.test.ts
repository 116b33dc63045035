import { describe, expect, it } from 'vitest';
import type { SessionEvent } from '../schemas/events.js';
import { encodeSessionEvent } from '../schemas/codec.js';
import { parseCmcdRecord, type CmcdRecord } from '../ingest/cmcd/parse.js';
import { createCmcdTranslationState, type CmcdTranslationState } from '../ingest/cmcd/state.js';
import {
  emptyCmcdCounters,
  pickBitrateKbps,
  REQUEST_MODE_SESSION_SUFFIX,
  translateCmcdRecord,
  translateCmcdRecords,
  type CmcdCounters,
  type CmcdMode,
  type CmcdTranslateContext,
} from '../ingest/cmcd/translate.js';
import { countryFromHeader, dimsFromUserAgent } from '../ingest/cmcd/ua.js';

const NOW = 1_767_225_700_000;

function rec(text: string): CmcdRecord {
  const r = parseCmcdRecord(text);
  if (!r.ok) throw new Error(`${r.code}: ${r.message}`);
  return r.record;
}

function ctx(mode: CmcdMode = 'event', extra: Partial<CmcdTranslateContext> = {}): CmcdTranslateContext {
  return { mode, receivedAtMs: NOW, clientHash: 'h', requestDims: { country: 'FR', browser: 'Chrome' }, ...extra };
}

function run(lines: string[], opts: { state?: CmcdTranslationState; counters?: CmcdCounters; mode?: CmcdMode; ctx?: Partial<CmcdTranslateContext> } = {}) {
  const state = opts.state ?? createCmcdTranslationState(100);
  const counters = opts.counters ?? emptyCmcdCounters();
  const out = translateCmcdRecords(state, lines.map(rec), ctx(opts.mode, opts.ctx), counters);
  return { ...out, counters, state };
}

const types = (events: SessionEvent[]) => events.map((e) => e.type);

describe('translateCmcdRecords: play states', () => {
  it.each([
    ['s', 'play_request'],
    ['k', 'seeking'],
    ['r', 'rebuffering'],
    ['a', 'paused'],
    ['w', 'paused'],
    ['e', 'ended'],
    ['q', 'quit'],
    ['d', 'heartbeat'],
  ] as const)('e=ps,sta=%s → %s', (sta, type) => {
    const { events } = run([`e=ps,sid="s",sn=0,sta=${sta},ts=1000,v=2`]);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ type, sessionId: 's', seq: 0, tsMs: 1000, receivedAtMs: NOW, source: 'cmcd', clientHash: 'h' });
  });

  it('sta=p is first_frame the first time (with msd as startupMs), playing afterwards', () => {
    const { events } = run([
      'e=ps,sid="s",sn=0,sta=s,ts=1000,v=2',
      'e=ps,msd=640,sid="s",sn=1,sta=p,ts=1640,v=2',
      'e=ps,sid="s",sn=2,sta=a,ts=5000,v=2',
      'e=ps,sid="s",sn=3,sta=p,ts=6000,v=2',
    ]);
    expect(types(events)).toEqual(['play_request', 'first_frame', 'paused', 'playing']);
    expect(events.map((e) => e.startupMs)).toEqual([null, 640, null, null]);
  });

  it('msd sent before the playing report waits for the first frame', () => {
    const { events } = run(['e=t,msd=900,sid="s",sn=0,sta=s,ts=1000,v=2', 'e=ps,sid="s",sn=1,sta=p,ts=1900,v=2']);
    expect(events[1]).toMatchObject({ type: 'first_frame', startupMs: 900 });
  });

  it('sta=f → fatal error with the first ec; e=e → non-fatal error unless sta=f', () => {
    const { events } = run([
      'e=e,ec=("MEDIA_ERR_NETWORK"),sid="s",sn=0,sta=p,ts=1,v=2',
      'e=ps,ec=("DRM_NOT_SUPPORTED" "PLAYBACK_FAILED"),sid="s",sn=1,sta=f,ts=2,v=2',
      'e=e,ec=("X"),sid="t",sn=0,sta=f,ts=3,v=2',
    ]);
    expect(events.map((e) => [e.type, e.errorCode, e.errorFatal])).toEqual([
      ['error', 'MEDIA_ERR_NETWORK', false],
      ['error', 'DRM_NOT_SUPPORTED', true],
      ['error', 'X', true],
    ]);
  });

  it('a state carried by an interval report (e=t) is a transition once, then heartbeats (CTA-5004-B 8.2.2)', () => {
    const { events } = run([
      'e=t,sid="s",sn=1,sta=s,ts=0,v=2',
      'e=t,msd=812,sid="s",sn=2,sta=p,ts=30000,v=2',
      'e=t,sid="s",sn=3,sta=p,ts=60000,v=2',
      'e=t,sid="s",sn=4,sta=e,ts=90000,v=2',
    ]);
    expect(types(events)).toEqual(['play_request', 'first_frame', 'heartbeat', 'ended']);
    expect(events[1]?.startupMs).toBe(812);
  });
});

describe('translateCmcdRecords: other events and fields', () => {
  it('e=rr → request with httpStatus, ttfbMs, ttlbMs', () => {
    const { events } = run(['e=rr,ot=v,rc=404,sid="s",sn=0,ts=5,ttfb=120,ttlb=480,url="seg.m4s",v=2']);
    expect(events[0]).toMatchObject({ type: 'request', httpStatus: 404, ttfbMs: 120, ttlbMs: 480, errorFatal: null });
  });

  it('e=bc → bitrate_change with pb (video) preferred over br', () => {
    const { events } = run(['br=(4200;v 256;a),e=bc,pb=(3000;v 256;a),sid="s",sn=0,ts=5,v=2', 'br=(4200;v 256;a),e=bc,sid="s",sn=1,ts=6,v=2']);
    expect(events.map((e) => [e.type, e.bitrateKbps])).toEqual([['bitrate_change', 3000], ['bitrate_change', 4200]]);
  });

  it('e=sk is an ad skip (CTA-5004-B 8.2.7), not a seek: a heartbeat; seeking is e=ps,sta=k', () => {
    expect(types(run(['cid="ad-content-555",e=sk,sid="s",sn=0,ts=1,v=2']).events)).toEqual(['heartbeat']);
  });

  it('dims: cdn (else h), cid, st, request dims; sticky; cdn_change when the CDN changes mid-session', () => {
    const { events, counters } = run([
      'cdn="cdn-a",cid="movie",e=t,sid="s",sn=0,st=l,ts=1,v=2',
      'e=t,sid="s",sn=1,ts=2,v=2',
      'e=t,h="cdn-b.example",sid="s",sn=2,ts=3,v=2',
      'e=h,h="cdn-c.example",sid="s",sn=3,ts=4,v=2',
    ]);
    expect(types(events)).toEqual(['heartbeat', 'heartbeat', 'cdn_change', 'cdn_change']);
    expect(events[1]?.dims).toMatchObject({ cdn: 'cdn-a', contentId: 'movie', streamType: 'live', country: 'FR', browser: 'Chrome', os: '' });
    expect(events[2]?.dims.cdn).toBe('cdn-b.example');
    expect(counters.cdnChanges).toBe(2);
  });

  it('dfa → droppedFrames, pt → playheadMs, st=v → vod, custom keys → custom dims, no ts → receive time', () => {
    const { events } = run(['com.example-tier="gold",dfa=12,e=t,pt=4500,sid="s",st=v,v=2'], { ctx: { customDims: { custom1: 'com.example-tier' } } });
    expect(events[0]).toMatchObject({ droppedFrames: 12, playheadMs: 4500, tsMs: NOW, seq: 0 });
    expect(events[0]?.dims).toMatchObject({ streamType: 'vod', custom1: 'gold' });
  });

  it('sums bsd (video or untagged) into reportedStarvationMs, a cross-check only', () => {
    const { counters, events } = run(['bsd=(1500;v 100;a),e=ps,sid="s",sn=0,sta=p,ts=1,v=2', 'bsd=(720),e=t,sid="s",sn=1,ts=2,v=2']);
    expect(counters.reportedStarvationMs).toBe(2220);
    expect(events.every((e) => e.type !== 'rebuffering')).toBe(true);
  });
});

describe('translateCmcdRecords: sequence numbers', () => {
  it('sn is seq; duplicates are dropped and counted, gaps and reordering counted', () => {
    const { events, dropped, counters } = run([
      'e=t,sid="s",sn=0,ts=1,v=2',
      'e=t,sid="s",sn=1,ts=2,v=2',
      'e=t,sid="s",sn=1,ts=2,v=2',
      'e=t,sid="s",sn=4,ts=5,v=2',
      'e=t,sid="s",sn=3,ts=4,v=2',
      'e=t,sid="s",sn=3,ts=4,v=2',
    ]);
    expect(events.map((e) => e.seq)).toEqual([0, 1, 4, 3]);
    expect(dropped).toEqual([{ index: 2, reason: 'duplicate' }, { index: 5, reason: 'duplicate' }]);
    expect(counters).toMatchObject({ records: 6, events: 4, duplicates: 2, gaps: 1, reordered: 1 });
  });

  it('records without sn are numbered by the translator', () => {
    expect(run(['e=t,sid="s",v=2', 'e=t,sid="s",v=2']).events.map((e) => e.seq)).toEqual([0, 1]);
  });

  it('a record without sid is dropped as missing_sid', () => {
    const { dropped, counters } = run(['e=t,sn=0,ts=1,v=2']);
    expect(dropped).toEqual([{ index: 0, reason: 'missing_sid' }]);
    expect(counters.missingSid).toBe(1);
  });

  it('the state is bounded: the least recently used session is evicted (and counted)', () => {
    const state = createCmcdTranslationState(2);
    const counters = emptyCmcdCounters();
    run(['e=ps,sid="a",sn=0,sta=p,v=2', 'e=t,sid="b",sn=0,v=2', 'e=t,sid="a",sn=1,v=2', 'e=t,sid="c",sn=0,v=2'], { state, counters });
    expect([...state.sessions.keys()]).toEqual(['a', 'c']);
    expect(counters.evicted).toBe(1);
    // b was forgotten: its sn=0 again is not recognised as a duplicate (the processors still drop it).
    expect(run(['e=t,sid="b",sn=0,v=2'], { state, counters }).events).toHaveLength(1);
  });
});

describe('translateCmcdRecords: request mode', () => {
  it('object records → request events in the <sid>#request session; session-only records → heartbeats; sta not applied', () => {
    const { events } = run(['cid="c",sid="s",v=2', 'br=(3000;v),d=4000,ot=v,rc=200,sid="s",sn=0,sta=p,msd=200,v=2'], { mode: 'request' });
    expect(types(events)).toEqual(['heartbeat', 'request']);
    expect(events[1]).toMatchObject({ sessionId: `s${REQUEST_MODE_SESSION_SUFFIX}`, httpStatus: 200, bitrateKbps: 3000, startupMs: null });
  });

  it('an untagged br counts as the bitrate only for video or muxed objects', () => {
    expect(pickBitrateKbps(rec('br=(320),ot=a,sid="s"'), 'request')).toBeNull();
    expect(pickBitrateKbps(rec('br=(3000),ot=v,sid="s"'), 'request')).toBe(3000);
    expect(pickBitrateKbps(rec('br=(320;a),sid="s"'), 'event')).toBeNull();
  });
});

describe('request dims', () => {
  it.each([
    ['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36', 'Chrome', 'Windows', 'desktop'],
    ['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0', 'Edge', 'Windows', 'desktop'],
    ['Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1', 'Safari', 'iOS', 'mobile'],
    ['Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15', 'Safari', 'macOS', 'desktop'],
    ['Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36', 'Chrome', 'Android', 'mobile'],
    ['Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0', 'Firefox', 'Linux', 'desktop'],
    ['Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/4.0 Chrome/76.0.3809.146 TV Safari/537.36', 'Samsung Internet', 'Tizen', 'tv'],
    ['curl/8.5.0', '', '', ''],
  ])('%s', (ua, browser, os, deviceType) => {
    expect(dimsFromUserAgent(ua)).toEqual({ browser, os, deviceType });
  });

  it('country: ISO alpha-2 upper-cased; XX, T1 and garbage → ""', () => {
    expect(['fr', ' DE ', 'XX', 'T1', 'FRA', undefined].map((v) => countryFromHeader(v))).toEqual(['FR', 'DE', '', '', '', '']);
  });
});

describe('out-of-range values are ignored, never fail the record', () => {
  it('drops an epoch-timestamp ttfb (dash.js 5.2) and keeps the rest of the event', () => {
    const state = createCmcdTranslationState();
    const counters = emptyCmcdCounters();
    const parsed = parseCmcdRecord('e=rr,sid="s1",sn=1,ts=1700000000000,rc=200,ttfb=1700000000123,ttlb=40,v=2');
    if (!parsed.ok) throw new Error(parsed.message);
    const out = translateCmcdRecord(state, parsed.record, { mode: 'event', receivedAtMs: 1_700_000_000_500, clientHash: 'h', requestDims: {} }, counters);
    expect(out.kind).toBe('event');
    if (out.kind !== 'event') return;
    expect(out.event).toMatchObject({ type: 'request', httpStatus: 200, ttfbMs: null, ttlbMs: 40 });
    expect(() => encodeSessionEvent(out.event)).not.toThrow();
  });
});
