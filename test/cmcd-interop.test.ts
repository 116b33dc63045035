/**
 * Interop: what the reference implementation (@svta/cml-cmcd, SVTA) produces, and the examples of
 * the spec itself, are accepted and translate to the expected events.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { CmcdReporter, encodeCmcd, toCmcdValue, type Cmcd } from '@svta/cml-cmcd';
import { silentLogger } from '../lib/logger.js';
import type { SessionEvent } from '../schemas/events.js';
import { buildApp, type IngestApp } from '../ingest/app.js';
import { parseCmcdBody, parseCmcdRecord, type CmcdRecord } from '../ingest/cmcd/parse.js';
import { cmcdRoutes } from '../ingest/cmcd/route.js';
import { createCmcdTranslationState } from '../ingest/cmcd/state.js';
import { emptyCmcdCounters, translateCmcdRecords } from '../ingest/cmcd/translate.js';

const NOW = 1_767_225_700_000;

function translate(lines: readonly string[], mode: 'event' | 'request' = 'event'): SessionEvent[] {
  const records: CmcdRecord[] = lines.map((l) => {
    const r = parseCmcdRecord(l);
    if (!r.ok) throw new Error(`${r.code}: ${r.message} in ${l}`);
    expect(r.ignored, l).toEqual([]);
    return r.record;
  });
  return translateCmcdRecords(createCmcdTranslationState(), records, { mode, receivedAtMs: NOW, clientHash: 'h', requestDims: {} }, emptyCmcdCounters()).events;
}

// CTA-5004-B (Dec. 2025) section 8 examples, as transcribed in the SVTA common-media-library test data
// (libs/cmcd/test/data/CTA_5004_B_EXAMPLES.ts, commit 1e06932e; "document whitespace removed").
const EX_8_2_2 = [
  'bl=(0),cid="content-id-123",e=t,h="example.com",pt=0,sid="session-id-123",sn=1,sta=s,su,ts=1764752400000,v=2',
  'bl=(6000),br=(4200;v 256;a),cid="content-id-123",e=t,h="example.com",lb=(523;v 64;a),msd=812,mtp=(87000;v 49000;a),pb=(4200;v 256;a),pt=29188,sf=d,sid="session-id-123",sn=2,st=v,sta=p,tb=(4200;v 256;a),tpb=(4200;v 256;a),ts=1764752430000,v=2',
  'bl=(3200),br=(4200;v 256;a),bs,bsd=(720;v),cid="content-id-123",e=t,ec=("MEDIA_ERR_NETWORK"),h="example.com",lb=(523;v 64;a),mtp=(89000;v 52000;a),pb=(4200;v 256;a),pt=59188,sf=d,sid="session-id-123",sn=3,st=v,sta=p,tb=(4200;v 256;a),tpb=(4200;v 256;a),ts=1764752460000,v=2',
  'bl=(6000),br=(4200;v 256;a),cid="content-id-123",e=t,h="example.com",lb=(523;v 64;a),mtp=(81000;v 55000;a),pb=(4200;v 256;a),pt=89188,sf=d,sid="session-id-123",sn=4,st=v,sta=p,tb=(4200;v 256;a),tpb=(4200;v 256;a),ts=1764752490000,v=2',
  'bl=(0),br=(4200;v 256;a),cid="content-id-123",e=t,h="example.com",lb=(523;v 64;a),mtp=(82000;v 55000;a),pb=(4200;v 256;a),pr=0,pt=111000,sf=d,sid="session-id-123",sn=5,st=v,sta=e,tb=(4200;v 256;a),tpb=(4200;v 256;a),ts=1764752520000,v=2',
];
const EX_8_2_3 =
  'cid="bbb",cmsdd="ZXRwPTEyNTAwO3J0dD0zNTttYj02MDAwO3JkPTIwMA==",cmsds="c2lkPSI5YTNiLTIxY2QiO2JyPTQ1MDA7ZD00MDAwO290PXY7c3Q9dg==",e=rr,nor=("video/segment-6.m4v"),ot=v,rc=200,sid="session1",ts=1763657019723,ttfb=180,ttlb=200,url="video/segment-5.m4v",v=2';
const EX_8_2_4 = 'cid="content-id-123",e=e,ec=("CODEC_NOT_SUPPORTED"),sid="session-id-123",ts=1764269150213,v=2';
const EX_8_2_5 = [
  'bs,cid="content-id-123",e=ps,sid="session-id-123",sta=r,ts=1764269150889,v=2',
  'bs,bsd=(1500),cid="content-id-123",e=ps,sid="session-id-123",sta=p,ts=1764269152389,v=2',
];
const EX_8_2_6 = 'bl=(0),cid="content-id-123",e=ps,pt=30000,sid="session-id-123",sta=k,ts=1764269150529,v=2';
const EX_8_1_8 =
  'bg,bl=(2100;v 1800;a),br=(3000;v 164;a),bs,bsa=(3;v),bsd=(1200;v 100;a),bsda=(4150;v 300;a),cid="content-id-123",cs="g48djn236sk2",d=4000,dfa=32,dl=1000,ec=("2001"),lb=(500;v 32;a),ltc=13500,msd=1700,mtp=(15000;v 6000;a),nor=("next-seg.mp4"),nr,ot=v,pb=(2000;v 164;a),pr=1.1,pt=632782,rtp=12000,sf=d,sid="session-id-123",sn=0,st=l,sta=p,su,tb=(6000;v 350;a),tbl=(2000;v 2000;a),tpb=(5000;v 164;a),v=2';

describe('CTA-5004-B examples', () => {
  it('8.2.2 interval reports (body of five lines): start, first frame with msd, heartbeats, ended', () => {
    expect(parseCmcdBody(EX_8_2_2.join('\n') + '\n').every((r) => r.ok)).toBe(true);
    const events = translate(EX_8_2_2);
    expect(events.map((e) => e.type)).toEqual(['play_request', 'first_frame', 'heartbeat', 'heartbeat', 'ended']);
    expect(events[1]).toMatchObject({ startupMs: 812, bitrateKbps: 4200, playheadMs: 29188, seq: 2, tsMs: 1764752430000 });
    expect(events[1]?.dims).toMatchObject({ cdn: 'example.com', contentId: 'content-id-123', streamType: 'vod' });
  });

  it('8.2.3 response received → request', () => {
    expect(translate([EX_8_2_3])[0]).toMatchObject({ type: 'request', httpStatus: 200, ttfbMs: 180, ttlbMs: 200, sessionId: 'session1' });
  });

  it('8.2.4 error → non-fatal error', () => {
    expect(translate([EX_8_2_4])[0]).toMatchObject({ type: 'error', errorCode: 'CODEC_NOT_SUPPORTED', errorFatal: false });
  });

  it('8.2.5 rebuffering then playing; 8.2.6 seeking', () => {
    expect(translate([...EX_8_2_5, EX_8_2_6]).map((e) => e.type)).toEqual(['rebuffering', 'first_frame', 'seeking']);
  });

  it('8.1.8 (every request-mode key) parses with nothing ignored; request mode → request', () => {
    expect(translate([EX_8_1_8], 'request')[0]).toMatchObject({ type: 'request', bitrateKbps: 2000, droppedFrames: 32, sessionId: 'session-id-123#request' });
  });
});

describe('records encoded by @svta/cml-cmcd encodeCmcd', () => {
  it('a play-state change, a response received and an error translate as expected', () => {
    const base = { sid: 'sess-svta', cid: 'movie-1', cdn: 'cdn-a', v: 2 } as const;
    const lines = [
      encodeCmcd({ ...base, e: 'ps', sta: 's', ts: 1_000, sn: 0 } as Cmcd, { reportingMode: 'event' }),
      encodeCmcd({ ...base, e: 'ps', sta: 'p', ts: 1_500, sn: 1, msd: 500, br: [toCmcdValue(3000, { v: true })] } as Cmcd, { reportingMode: 'event' }),
      encodeCmcd({ ...base, e: 'rr', ts: 2_000, sn: 2, rc: 200, ttfb: 40, ttlb: 90, url: 'https://cdn-a.example/seg1.m4s' } as Cmcd, { reportingMode: 'event' }),
      encodeCmcd({ ...base, e: 'e', ec: ['NET'], ts: 3_000, sn: 3 } as Cmcd, { reportingMode: 'event' }),
    ];
    const events = translate(lines);
    expect(events.map((e) => [e.type, e.seq])).toEqual([['play_request', 0], ['first_frame', 1], ['request', 2], ['error', 3]]);
    expect(events[1]).toMatchObject({ startupMs: 500, bitrateKbps: 3000 });
    expect(events[2]).toMatchObject({ httpStatus: 200, ttfbMs: 40, ttlbMs: 90 });
  });
});

describe('CmcdReporter (SVTA) posting to our server over a real socket', () => {
  const apps: IngestApp[] = [];
  const reporters: CmcdReporter[] = [];
  afterEach(async () => {
    for (const r of reporters.splice(0)) r.stop(false);
    await Promise.all(apps.splice(0).map((a) => a.close()));
  });

  async function waitFor(cond: () => boolean, deadlineMs = 5_000): Promise<void> {
    const end = Date.now() + deadlineMs;
    while (!cond()) {
      if (Date.now() > end) throw new Error('condition not met before the deadline');
      await new Promise((r) => setImmediate(r));
    }
  }

  it('its event reports are accepted (204) and become the session events', async () => {
    const published: SessionEvent[] = [];
    const statuses: number[] = [];
    const app = buildApp({
      http: { port: 0, host: '127.0.0.1', bodyLimitBytes: 64 * 1024, corsOrigins: '*', trustProxy: false },
      log: silentLogger(),
      ipHashSecret: 's',
      publish: async () => {},
      isReady: () => true,
      plugins: [
        cmcdRoutes({ publish: async (events) => void published.push(...events), now: Date.now, ipHashSecret: 's', log: silentLogger(), maxBodyBytes: 65_536 }),
      ],
    });
    apps.push(app);
    app.addHook('onResponse', async (_req, reply) => void statuses.push(reply.statusCode));
    const address = await app.listen({ port: 0, host: '127.0.0.1' });

    const reporter = new CmcdReporter({
      sid: 'sess-reporter',
      cid: 'movie-2',
      eventTargets: [{ url: `${address}/v1/cmcd`, events: ['ps', 'e', 'rr'], batchSize: 1, enabledKeys: ['sta', 'sid', 'cid', 'br', 'sn', 'ts', 'e', 'ec', 'msd'] }],
    });
    reporters.push(reporter);
    reporter.start();
    reporter.update({ sta: 's' });
    reporter.update({ sta: 'p', msd: 640 });
    reporter.update({ sta: 'a' });
    reporter.flush();
    await waitFor(() => published.filter((e) => e.sessionId === 'sess-reporter').length >= 3);

    const mine = published.filter((e) => e.sessionId === 'sess-reporter');
    expect(mine.map((e) => e.type)).toEqual(['play_request', 'first_frame', 'paused']);
    expect(mine[1]?.startupMs).toBe(640);
    expect(mine[0]?.dims.contentId).toBe('movie-2');
    expect(statuses.every((s) => s === 204)).toBe(true);
  });
});
