/**
 * The closed loop with real players: origin A degrades in the middle of playback → the players'
 * CMCD v2 reports show it → the detector ranks cdn-a last for the scope → the player's next steering
 * request (GET /v1/steering/hls|dash, TTL 2 s) receives the new PATHWAY-PRIORITY /
 * SERVICE-LOCATION-PRIORITY → its segments come from origin B (asserted on B's request log, by
 * session id). hls.js: origin A turns slow (ttfb, stalls). dash.js: origin A turns flaky, answering
 * 503 to the first two requests of every segment (e=rr with rc=503: the request error rate) — see
 * LOOP_PLANS for why not slow.
 *
 * Preconditions fail the test with the reason (never skip): the steering endpoint must be served by
 * lib/runtime.ts, and the detector must issue decisions from window metrics with the test's low
 * volume gates (DETECTOR_TEST_ENV). See docs/players-testing.md.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Config } from '../lib/config.js';
import type { Runtime } from '../lib/runtime.js';
import { startTestRuntime, waitUntil } from './helpers/runtime.js';
import { LONG_MEDIA } from './players/media.js';
import { queryMetrics } from './players/metrics.js';
import type { OriginMode } from './players/origins.js';
import { CDN_A, CDN_B, COUNTRY, COUNTRY_HEADER, PATHWAYS, startRig, type PlayerKind, type Rig } from './players/rig.js';

/**
 * Detector gates low enough for two viewers. The names are this test's proposal for the lead wiring
 * the detector into lib/runtime.ts; variables the config does not know are ignored by loadConfig.
 */
const DETECTOR_TEST_ENV: Record<string, string> = {
  QOE_DETECTOR_MIN_CONCURRENT_SESSIONS: '0',
  QOE_DETECTOR_MIN_VOLUME: '1',
  QOE_DETECTOR_MIN_HISTORY_WINDOWS: '1',
  QOE_DETECTOR_SPAN_WINDOWS: '1',
  QOE_DETECTOR_PERSISTENCE: '1/1',
  QOE_DETECTOR_COOLDOWN_MS: '10000',
};

/** Healthy playback before origin A degrades: history for the detector's baselines. */
const HEALTHY_MS = 25_000;
const DECISION_DEADLINE_MS = 150_000;
const SWITCH_DEADLINE_MS = 60_000;

interface LoopPlan {
  /** What origin A turns into after HEALTHY_MS. */
  degrade: OriginMode;
  /** Said in messages: what the degradation is. */
  what: string;
  /** Runtime settings on top of the file's (detector gates). */
  env: Record<string, string>;
}

/**
 * hls.js: +1.5 s on every origin A response (segments are 2 s): its `ttfb` and stalls show it.
 *
 * dash.js 5.2.1 cannot report a slow origin usefully: its `e=rr` `ttfb` is an epoch timestamp minus
 * a performance.now() value (ingest ignores it as out of range) and its buffer rides out the delay.
 * A fully failing origin does not work either: once a segment's retries are exhausted dash.js
 * blacklists the service location and moves to B on its own (a trial run: on B with no steering
 * response naming B first), which this test must not take for the loop. So origin A
 * sheds load: the first two requests of every object are answered 503 and dash.js's third attempt
 * (dash.js defaults: 3 retries, 1 s apart) is served. Every failed attempt is an `e=rr` with `rc=503` → a
 * request error (ingest/cmcd/translate.ts) → the detector's request_error_rate. That signal is a
 * count, judged by exact Poisson/binomial tails: one viewer's errors in one 10 s window against a
 * peer's ~15 clean requests stay below the detector's zPeer (4), so the level is pooled over the
 * detector's default span of 3 windows instead of the file's 1 (peer z ≈ 6 in our runs; with one
 * failure per object it was ≈ 4.3, too close to the gate).
 */
const LOOP_PLANS: Record<PlayerKind, LoopPlan> = {
  hls: { degrade: { kind: 'slow', delayMs: 1500 }, what: 'turned slow (+1.5 s per response)', env: {} },
  dash: {
    degrade: { kind: 'flaky', status: 503, failuresPerObject: 2 },
    what: 'started answering 503 to the first two requests of every segment',
    env: { QOE_DETECTOR_SPAN_WINDOWS: '3' },
  },
};

interface Started {
  runtime: Runtime;
  config: Config;
  rig: Rig;
}

/** What the running test started; stopped in afterEach. */
let started: Partial<Started> = {};

/**
 * A runtime and a rig per test (steering decisions and the detector's state must not carry over),
 * started by the test itself so that it can add settings (LOOP_PLANS).
 */
async function start(extraEnv: Record<string, string> = {}): Promise<Started> {
  const { runtime, config } = await startTestRuntime({
    PORT: '0',
    QOE_HOST: '127.0.0.1',
    QOE_DATA_DIR: mkdtempSync(join(tmpdir(), 'qoe-players-steering-')),
    QOE_PARTITIONS: '2',
    QOE_SESSION_TIMEOUT_MS: '6000',
    QOE_IDLE_PARTITION_MS: '1000',
    QOE_MAX_OUT_OF_ORDER_MS: '2000',
    QOE_SINK_FLUSH_MS: '200',
    QOE_LOG_LEVEL: 'warn',
    QOE_STEERING_NEUTRAL: `${CDN_A},${CDN_B}`,
    QOE_STEERING_PATHWAYS: `${CDN_A}=${PATHWAYS[CDN_A]},${CDN_B}=${PATHWAYS[CDN_B]}`,
    QOE_STEERING_TTL_S: '2',
    QOE_STEERING_SCOPE_HEADER: COUNTRY_HEADER,
    ...DETECTOR_TEST_ENV,
    ...extraEnv,
  });
  started = { runtime, config };
  const rig = await startRig(runtime.url, LONG_MEDIA);
  started.rig = rig;
  return { runtime, config, rig };
}

afterEach(async () => {
  const { runtime, config, rig } = started;
  started = {};
  await rig?.close();
  await runtime?.stop();
  if (config) rmSync(config.dataDir, { recursive: true, force: true });
});

interface SteeringBody {
  'PATHWAY-PRIORITY'?: unknown;
}

async function steeringPriority(runtime: Runtime, kind: PlayerKind): Promise<{ status: number; priority: string[] | undefined }> {
  const res = await fetch(`${runtime.url}/v1/steering/${kind}?country=${COUNTRY}`);
  if (res.status !== 200) return { status: res.status, priority: undefined };
  const body = (await res.json()) as SteeringBody;
  const p = body['PATHWAY-PRIORITY'];
  return { status: 200, priority: Array.isArray(p) ? p.map(String) : undefined };
}

async function closedLoop(kind: PlayerKind): Promise<void> {
  const plan = LOOP_PLANS[kind];
  const { runtime, config, rig } = await start(plan.env);
  // Precondition 1: the steering endpoint is served by the runtime.
  const before = await steeringPriority(runtime, kind);
  if (before.status !== 200 || before.priority === undefined) {
    throw new Error(`GET /v1/steering/${kind} is not served by lib/runtime.ts (status ${before.status}): the closed loop cannot run`);
  }
  expect(before.priority[0], 'nothing steered yet: the neutral priority').toBe(PATHWAYS[CDN_A]);

  const startedMs = Date.now();
  // The viewer under test starts on A; a peer on B gives the detector a healthy comparison. The peer
  // has B alone and no steering: with steering it followed the neutral priority (A first) to A in
  // one CI run, leaving the detector no healthy peer.
  const viewer = await rig.open(kind, { firstPathway: PATHWAYS[CDN_A], maxBufferS: 6, viaEdge: true });
  const peer = await rig.open(kind, { onlyPathway: PATHWAYS[CDN_B], maxBufferS: 6, viaEdge: true });
  await waitUntil('both players to start', async () => (await viewer.page.playing()) && (await peer.page.playing()), 30_000);
  await waitUntil(`${HEALTHY_MS} ms of healthy playback`, () => Date.now() - startedMs >= HEALTHY_MS, HEALTHY_MS + 5000);
  expect(rig.a.segmentRequests(startedMs).filter((r) => r.sid === viewer.sid).length).toBeGreaterThan(0);
  expect(rig.b.segmentRequests(startedMs).filter((r) => r.sid === viewer.sid)).toEqual([]);

  const degradedMs = Date.now();
  rig.a.setMode(plan.degrade);

  let decidedMs = 0;
  try {
    await waitUntil('a steering decision ranking cdn-a last', async () => {
      const { priority } = await steeringPriority(runtime, kind);
      return priority !== undefined && priority.at(-1) === PATHWAYS[CDN_A] && priority[0] !== PATHWAYS[CDN_A];
    }, DECISION_DEADLINE_MS);
    decidedMs = Date.now();
  } catch {
    const byCdn = await queryMetrics(runtime, config.processor.windowMs, startedMs, `contentId:${viewer.cid}|${peer.cid}`, 'cdn,country');
    const countries = [...new Set(byCdn.map((p) => p.group.country))];
    const viewerOnB = rig.b.segmentRequests(degradedMs).filter((r) => r.sid === viewer.sid).length;
    const peerOnA = rig.a.segmentRequests(startedMs).filter((r) => r.sid === peer.sid).length;
    const reasons = [
      ...(countries.includes(COUNTRY) ? [] : [`The views reached /v1/metrics with country ${JSON.stringify(countries)}, not '${COUNTRY}': ` +
        `lib/runtime.ts must pass countryHeader '${COUNTRY_HEADER}' to cmcdRoutes (the edge proxy sends it).`]),
      ...(viewerOnB === 0 ? [] : [`The ${kind} viewer fetched ${viewerOnB} segments from origin B on its own (its failover), which takes its traffic off A.`]),
      ...(peerOnA === 0 ? [] : [`The peer fetched ${peerOnA} segments from origin A: without traffic on B the detector has no healthy peer to compare with.`]),
      'Is the detector wired into lib/runtime.ts, and are its volume gates (DETECTOR_TEST_ENV) applied?',
    ];
    const { reports } = await viewer.page.state();
    throw new Error(`no steering decision ranked ${CDN_A} last within ${DECISION_DEADLINE_MS / 1000} s after origin A ${plan.what}. ` +
      `${reasons.join(' ')} Window metrics of the two views by cdn × country: ` +
      JSON.stringify(byCdn.map((p) => ({
        ...p.group, ttfbP50Ms: p.metrics.ttfbP50Ms, rebufferMs: p.metrics.rebufferMs, requests: p.metrics.requests, requestErrorRate: p.metrics.requestErrorRate,
      }))) + `; the viewer's CMCD reports: ${JSON.stringify(reports)}; first browser problems: ` +
      JSON.stringify({ viewer: viewer.page.problems.slice(0, 5), peer: peer.page.problems.slice(0, 5) }));
  }
  const reason = runtime.steering?.lookup({ country: COUNTRY, asn: '' })?.decision.reason;
  console.log(`[${kind}] decision ${decidedMs - degradedMs} ms after origin A ${plan.what}: ${JSON.stringify(reason)}`);

  await waitUntil(`the ${kind} viewer to fetch segments from origin B`,
    () => rig.b.segmentRequests(decidedMs).some((r) => r.sid === viewer.sid), SWITCH_DEADLINE_MS);
  const state = await viewer.page.state();
  console.log(`[${kind}] switched to B ${Date.now() - decidedMs} ms after the decision; steering responses seen by the player: ${JSON.stringify(state.steering)}`);
  expect(state.steering.some((s) => s.priority?.[0] === PATHWAYS[CDN_B]),
    `the ${kind} viewer is on B without a steering response naming B first: its own failover, not the decision`).toBe(true);
  // The move is the decision's doing, not the player's own failover: nothing from B before it.
  expect(rig.b.segmentRequests(startedMs).filter((r) => r.sid === viewer.sid && r.atMs < decidedMs),
    `the ${kind} viewer fetched from B before the decision: its own failover, not steering`).toEqual([]);
  await viewer.page.screenshot(`players-steering-${kind}.png`);
  await Promise.all([viewer.page.stop(), peer.page.stop()]);
  rig.a.setMode({ kind: 'ok' });
}

/**
 * The player half of the loop alone, detector bypassed: a decision submitted to the steering service
 * reaches the player through its next steering request and moves its segments to origin B.
 */
async function followDecision(kind: PlayerKind): Promise<void> {
  const { runtime, config, rig } = await start();
  const steering = runtime.steering;
  if (!steering) throw new Error('lib/runtime.ts started no steering service (detector role): the closed loop cannot run');
  const startedMs = Date.now();
  const viewer = await rig.open(kind, { firstPathway: PATHWAYS[CDN_A], maxBufferS: 6 });
  try {
    await waitUntil(`${kind} to start`, () => viewer.page.playing(), 30_000);
    await waitUntil('a few segments from A', () => rig.a.segmentRequests(startedMs).filter((r) => r.sid === viewer.sid).length >= 3, 30_000);
    const submitted = steering.submit({
      scope: { country: COUNTRY, asn: '' }, priority: [CDN_B, CDN_A], action: 'demote', ttlMs: 600_000,
      reason: { metric: 'operator', cdn: CDN_A, value: 0, baseline: 0, score: 0, windowStartMs: startedMs, windowMs: config.processor.windowMs, detail: 'players test' },
    });
    expect(submitted.outcome).toBe('applied');
    const decidedMs = Date.now();
    await waitUntil(`the ${kind} viewer to fetch segments from origin B`,
      () => rig.b.segmentRequests(decidedMs).some((r) => r.sid === viewer.sid), SWITCH_DEADLINE_MS);
    const switchedMs = Date.now();
    // After the switch the viewer stays on B: nothing more from A (a request already in flight may land).
    await waitUntil('two more segments from B', () => rig.b.segmentRequests(switchedMs).filter((r) => r.sid === viewer.sid).length >= 2, 30_000);
    const state = await viewer.page.state();
    console.log(`[${kind}] followed the decision in ${switchedMs - decidedMs} ms; steering responses: ${JSON.stringify(state.steering.map((s) => s.priority))}`);
    expect(state.errors).toEqual([]);
    expect(state.steering.some((s) => s.priority?.[0] === PATHWAYS[CDN_B])).toBe(true);
    expect(rig.a.segmentRequests(switchedMs + 3000).filter((r) => r.sid === viewer.sid)).toEqual([]);
    await viewer.page.screenshot(`players-steering-follow-${kind}.png`);
  } finally {
    steering.submit({
      scope: { country: COUNTRY, asn: '' }, priority: [CDN_A, CDN_B], action: 'neutral', ttlMs: 600_000,
      reason: { metric: 'operator', cdn: '', value: 0, baseline: 0, score: 0, windowStartMs: startedMs, windowMs: config.processor.windowMs, detail: 'players test: back to neutral' },
    });
    await viewer.page.stop();
  }
}

describe('closed loop: degraded origin → detector → steering → players move', () => {
  it('hls.js moves from origin A (slow) to origin B', () => closedLoop('hls'), 480_000);
  it('dash.js moves from origin A (503 on first attempts) to origin B', () => closedLoop('dash'), 480_000);
});

// Own runtime per test as well: these submit decisions themselves, detector bypassed.
describe('players follow a steering decision (detector bypassed)', () => {
  it('hls.js: decision cdn-b first → segments from origin B', () => followDecision('hls'), 300_000);
  it('dash.js: decision cdn-b first → segments from origin B', () => followDecision('dash'), 300_000);
});
