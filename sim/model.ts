/**
 * The player-population model: pure and seeded. Each view is drawn as a TIMELINE — contiguous state
 * segments, non-fatal errors, media requests and an ending — from which both the wire events
 * (sim/emit.ts) and the ground truth (sim/truth.ts) are derived independently.
 */
import type { Dims } from '../schemas/events.js';
import { emitEvents, type SimEvent } from './emit.js';
import { drawViewer, LADDERS, type Viewer } from './population.js';
import { chance, clamp, createRng, exponential, intBetween, lognormal, pick, uniform, weighted, type Rng } from './prng.js';
import { generateRequests } from './requests.js';
import { defaultModelOptions, effectAt, type ModelOptions } from './options.js';

export { defaultModelOptions, parseDegradation, resolveModelOptions } from './options.js';
export type { Degradation, ModelOptions } from './options.js';

/** The state the view is in, as the truth counts time (seek/stall before the first frame stay `starting`). */
export type PlayState = 'starting' | 'playing' | 'paused' | 'seeking' | 'rebuffering';

/** The event that opens a segment. */
export type SegmentSignal = 'play_request' | 'first_frame' | 'playing' | 'paused' | 'seeking' | 'rebuffering' | 'bitrate_change';

export interface Segment {
  fromMs: number;
  /** Exclusive; equals the next segment's fromMs, or the view's endMs for the last one. */
  toMs: number;
  state: PlayState;
  signal: SegmentSignal;
  /** Rendition in effect; null before the first frame. */
  bitrateKbps: number | null;
  playheadMs: number;
}

export interface ErrorMark {
  ms: number;
  code: string;
}

export interface RequestMark {
  ms: number;
  httpStatus: number;
  /** null when the request failed before any byte (httpStatus 0). */
  ttfbMs: number | null;
  ttlbMs: number | null;
}

/** How the view finished. `abandoned`: the player went silent at `ms` without a terminal event. */
export type Ending =
  | { kind: 'ended'; ms: number }
  | { kind: 'quit'; ms: number }
  | { kind: 'fatal'; ms: number; code: string }
  | { kind: 'abandoned'; ms: number };

export interface ViewTimeline {
  index: number;
  sessionId: string;
  dims: Dims;
  attemptMs: number;
  firstFrameMs: number | null;
  segments: Segment[];
  /** Non-fatal errors (a fatal one is the ending). */
  errors: ErrorMark[];
  requests: RequestMark[];
  ending: Ending;
  /** ts of the view's last emitted event: time after it counts nowhere. */
  endMs: number;
}

export interface SimView {
  timeline: ViewTimeline;
  events: SimEvent[];
}

const START_FATAL_CODES = ['MANIFEST_LOAD_ERROR', 'DRM_LICENSE_ERROR', 'MEDIA_ERR_SRC_NOT_SUPPORTED'] as const;
const PLAY_FATAL_CODES = ['FRAG_LOAD_ERROR', 'MEDIA_ERR_DECODE', 'BUFFER_FULL_ERROR'] as const;
const NON_FATAL_CODES = ['FRAG_LOAD_TIMEOUT', 'LEVEL_LOAD_ERROR', 'KEY_STATUS_WARNING', 'FRAG_PARSING_ERROR'] as const;

/** Generates the whole population, view i from its own PRNG stream (stable under other options). */
export function generatePopulation(options: Partial<ModelOptions> = {}): SimView[] {
  const o: ModelOptions = { ...defaultModelOptions(), ...options };
  const views: SimView[] = [];
  for (let i = 0; i < o.views; i++) views.push(generateView(i, o));
  return views;
}

interface Draft {
  o: ModelOptions;
  rng: Rng;
  viewer: Viewer;
  ladder: readonly number[];
  attemptMs: number;
  segments: Segment[];
  errors: ErrorMark[];
}

function pushSegment(d: Draft, fromMs: number, state: PlayState, signal: SegmentSignal, bitrateKbps: number | null, playheadMs: number): void {
  const prev = d.segments[d.segments.length - 1];
  if (prev !== undefined) {
    if (fromMs < prev.fromMs) throw new Error('segments must not go back in time');
    prev.toMs = fromMs;
  }
  d.segments.push({ fromMs, toMs: fromMs, state, signal, bitrateKbps, playheadMs });
}

export function generateView(index: number, o: ModelOptions): SimView {
  const rng = createRng(o.seed, 'view', index);
  const viewer = drawViewer(rng, o.liveShare);
  const sessionId = `s${o.seed}-${index}-${Math.floor(rng() * 0xffffffff).toString(36)}`;
  const attemptMs = o.startMs + Math.floor(rng() * o.periodMs);
  const d: Draft = { o, rng, viewer, ladder: LADDERS[viewer.device], attemptMs, segments: [], errors: [] };
  pushSegment(d, attemptMs, 'starting', 'play_request', null, 0);

  const { ending, firstFrameMs } = startup(d);
  const last = d.segments[d.segments.length - 1];
  if (last !== undefined) last.toMs = ending.ms;

  const requests = o.requests
    ? generateRequests(createRng(o.seed, 'requests', index), d.segments, ending, viewer.dims, o)
    : [];
  const draft: ViewTimeline = {
    index,
    sessionId,
    dims: viewer.dims,
    attemptMs,
    firstFrameMs,
    segments: d.segments,
    errors: d.errors,
    requests,
    ending,
    endMs: ending.ms,
  };
  const events = emitEvents(draft, o.heartbeatMs);
  const endMs = events[events.length - 1]?.ts ?? attemptMs;
  // An abandoned view's time stops at its last emitted event (the pipeline cannot see further).
  const segments = d.segments.map((s) => ({ ...s, toMs: Math.min(s.toMs, endMs) }));
  return { timeline: { ...draft, segments, endMs }, events };
}

/** Attempt → first frame, or a start failure / exit / silence before it. */
function startup(d: Draft): { ending: Ending; firstFrameMs: number | null } {
  const { o, rng, attemptMs } = d;
  const effect = effectAt(o.degrade, d.viewer.dims, attemptMs, o.startMs);
  const vstMs = Math.round(clamp(lognormal(rng, o.startupMedianMs * effect.startup, o.startupSigma), 50, 120_000));
  const pFail = Math.max(o.startFailProb, effect.startFail);
  // Slow starts make people leave.
  const pExit = o.ebvsProb * (vstMs > 5000 ? 4 : 1);
  const r = rng();
  let ending: Ending | null = null;
  const before = (lo: number, hi: number): number => attemptMs + Math.max(1, Math.round(vstMs * uniform(rng, lo, hi)));
  if (r < pFail) ending = { kind: 'fatal', ms: before(0.2, 1), code: pick(rng, START_FATAL_CODES) };
  else if (r < pFail + pExit) ending = { kind: 'quit', ms: before(0.05, 0.95) };
  else if (r < pFail + pExit + o.abandonBeforeStartProb) ending = { kind: 'abandoned', ms: before(0.05, 0.95) };

  const stopMs = ending?.ms ?? attemptMs + vstMs;
  // Reported during startup but counted as starting: a resume-from-position seek, a stall.
  let playheadMs = 0;
  const marks: { ms: number; signal: 'seeking' | 'rebuffering' }[] = [];
  const room = stopMs - attemptMs > 2;
  if (room && chance(rng, o.startupSeekProb)) {
    const content = d.viewer.content;
    playheadMs = content.durationMs === null ? 0 : intBetween(rng, 0, Math.floor(content.durationMs / 2));
    marks.push({ ms: attemptMs + intBetween(rng, 1, stopMs - attemptMs - 1), signal: 'seeking' });
  }
  if (room && chance(rng, o.startupStallProb)) {
    marks.push({ ms: attemptMs + intBetween(rng, 1, stopMs - attemptMs - 1), signal: 'rebuffering' });
  }
  marks.sort((a, b) => a.ms - b.ms);
  for (const m of marks) pushSegment(d, m.ms, 'starting', m.signal, null, playheadMs);
  if (ending !== null) return { ending, firstFrameMs: null };

  const firstFrameMs = attemptMs + vstMs;
  const top = d.ladder.length - 1;
  const rung = clamp(Math.floor(d.viewer.network * d.ladder.length * 0.8), 0, top);
  pushSegment(d, firstFrameMs, 'playing', 'first_frame', d.ladder[rung] ?? null, playheadMs);
  return { ending: playback(d, firstFrameMs, playheadMs, rung), firstFrameMs };
}

type Happening = 'rebuffer' | 'seek' | 'pause' | 'switch' | 'error' | 'fatal';

/** Competing exponential hazards while playing, until the content ends or the viewer's watch time is up. */
function playback(d: Draft, firstFrameMs: number, startPlayheadMs: number, startRung: number): Ending {
  const { o, rng, ladder, viewer } = d;
  const durationMs = viewer.content.durationMs;
  const live = durationMs === null;
  let t = firstFrameMs;
  let playheadMs = startPlayheadMs;
  let rung = startRung;
  const bitrate = (): number => ladder[rung] ?? 0;
  // Stalls, seeks and pauses are cut short at the view's length cap.
  const lastMs = d.attemptMs + o.maxViewMs - 1;
  const upToCap = (ms: number): number => Math.max(1, Math.min(ms, lastMs - t));
  const watchEndMs = Math.min(t + Math.round(clamp(lognormal(rng, o.watchMedianMs, 1), 2000, o.maxViewMs)), lastMs - 1);
  for (;;) {
    const effect = effectAt(o.degrade, viewer.dims, t, o.startMs);
    const perMin: (readonly [Happening, number])[] = [
      ['rebuffer', o.rebufferPerMin * effect.rebuffer],
      ['seek', o.seekPerMin * (live ? 0.2 : 1)],
      ['pause', o.pausePerMin * (live ? 0.3 : 1)],
      ['switch', o.switchPerMin],
      ['error', o.errorPerMin],
      ['fatal', o.fatalPerMin],
    ];
    const totalPerMs = perMin.reduce((acc, [, r]) => acc + r, 0) / 60_000;
    const dt = Math.max(1, Math.ceil(Math.min(exponential(rng, totalPerMs), 1e12)));
    const toContentEnd = durationMs === null ? Number.POSITIVE_INFINITY : Math.max(1, durationMs - playheadMs);
    const toWatchEnd = Math.max(1, watchEndMs - t);
    if (dt >= toContentEnd || dt >= toWatchEnd) {
      if (toContentEnd <= toWatchEnd) return { kind: 'ended', ms: t + toContentEnd };
      return chance(rng, o.abandonProb) ? { kind: 'abandoned', ms: t + toWatchEnd } : { kind: 'quit', ms: t + toWatchEnd };
    }
    t += dt;
    playheadMs += dt;
    const what = weighted(rng, perMin);
    if (what === 'fatal') return { kind: 'fatal', ms: t, code: pick(rng, PLAY_FATAL_CODES) };
    if (what === 'error') {
      d.errors.push({ ms: t, code: pick(rng, NON_FATAL_CODES) });
    } else if (what === 'switch') {
      const up = rng() < 0.35 + 0.4 * viewer.network;
      const next = clamp(rung + (up ? 1 : -1), 0, ladder.length - 1);
      if (next !== rung) {
        rung = next;
        pushSegment(d, t, 'playing', 'bitrate_change', bitrate(), playheadMs);
      }
    } else if (what === 'rebuffer') {
      pushSegment(d, t, 'rebuffering', 'rebuffering', bitrate(), playheadMs);
      t += upToCap(Math.round(clamp(lognormal(rng, o.rebufferMedianMs, 0.8), 100, 120_000)));
      if (chance(rng, 0.08)) return { kind: 'quit', ms: t }; // gave up during the stall
      pushSegment(d, t, 'playing', 'playing', bitrate(), playheadMs);
      const switchAt = t + intBetween(rng, 1, 1500);
      if (rung > 0 && chance(rng, 0.5) && switchAt < watchEndMs && (durationMs === null || playheadMs + (switchAt - t) < durationMs)) {
        rung -= 1; // ABR steps down after a stall
        playheadMs += switchAt - t;
        t = switchAt;
        pushSegment(d, t, 'playing', 'bitrate_change', bitrate(), playheadMs);
      }
    } else if (what === 'seek') {
      pushSegment(d, t, 'seeking', 'seeking', bitrate(), playheadMs);
      t += upToCap(Math.round(clamp(lognormal(rng, 600, 0.7), 50, 30_000)));
      if (durationMs !== null) playheadMs = intBetween(rng, 0, Math.max(0, durationMs - 10_000));
      pushSegment(d, t, 'playing', 'playing', bitrate(), playheadMs);
    } else {
      pushSegment(d, t, 'paused', 'paused', bitrate(), playheadMs);
      t += upToCap(Math.round(clamp(lognormal(rng, 15_000, 1.2), 500, 600_000)));
      if (chance(rng, 0.15)) return { kind: 'quit', ms: t }; // left while paused
      pushSegment(d, t, 'playing', 'playing', bitrate(), playheadMs);
    }
    if (t >= lastMs) return { kind: 'quit', ms: t + 1 };
  }
}
