/**
 * Ground truth from the model's timelines (never from the emitted events), with the pipeline's contract:
 * tumbling epoch-aligned windows [k·W, (k+1)·W); counts in the window of the event that marks them;
 * state time split at window boundaries; nothing after a view's last event.
 */
import { DIMENSIONS, type Dims } from '../schemas/events.js';
import type { SimEvent } from './emit.js';
import type { PlayState, ViewTimeline } from './model.js';

export interface TruthMetrics {
  attempts: number;
  plays: number;
  vsf: number;
  ebvs: number;
  vpf: number;
  ended: number;
  startingMs: number;
  playingMs: number;
  pausedMs: number;
  seekMs: number;
  rebufferMs: number;
  rebufferCount: number;
  seekCount: number;
  activeMs: number;
  /** Σ bitrateKbps × playing ms (kbit·ms = bit). */
  bitsPlayed: number;
  playingMsByBitrateKbps: Record<string, number>;
  requests: number;
  requestErrors: number;
  vstMs: number[];
  ttfbMs: number[];
}

export interface TruthWindow extends TruthMetrics {
  windowStartMs: number;
  dims: Dims;
}

export interface Truth {
  windowMs: number;
  /** Start of the first window holding an event (window-aligned). */
  startMs: number;
  /** End (exclusive) of the last window holding an event (window-aligned). */
  endMs: number;
  firstEventMs: number;
  lastEventMs: number;
  views: number;
  events: number;
  /** One entry per window × full dims with any nonzero value, sorted by window then dims. */
  windows: TruthWindow[];
}

export const DEFAULT_WINDOW_MS = 10_000;

export function emptyMetrics(): TruthMetrics {
  return {
    attempts: 0,
    plays: 0,
    vsf: 0,
    ebvs: 0,
    vpf: 0,
    ended: 0,
    startingMs: 0,
    playingMs: 0,
    pausedMs: 0,
    seekMs: 0,
    rebufferMs: 0,
    rebufferCount: 0,
    seekCount: 0,
    activeMs: 0,
    bitsPlayed: 0,
    playingMsByBitrateKbps: {},
    requests: 0,
    requestErrors: 0,
    vstMs: [],
    ttfbMs: [],
  };
}

/** Adds b into a (associative; sample lists are concatenated). */
export function mergeMetrics(a: TruthMetrics, b: TruthMetrics): TruthMetrics {
  const out = { ...a, playingMsByBitrateKbps: { ...a.playingMsByBitrateKbps }, vstMs: [...a.vstMs, ...b.vstMs], ttfbMs: [...a.ttfbMs, ...b.ttfbMs] };
  const counters = ['attempts', 'plays', 'vsf', 'ebvs', 'vpf', 'ended', 'startingMs', 'playingMs', 'pausedMs', 'seekMs', 'rebufferMs', 'rebufferCount', 'seekCount', 'activeMs', 'bitsPlayed', 'requests', 'requestErrors'] as const;
  for (const k of counters) out[k] = a[k] + b[k];
  for (const [rate, ms] of Object.entries(b.playingMsByBitrateKbps)) {
    out.playingMsByBitrateKbps[rate] = (out.playingMsByBitrateKbps[rate] ?? 0) + ms;
  }
  return out;
}

export function windowStart(ms: number, windowMs: number): number {
  return Math.floor(ms / windowMs) * windowMs;
}

const STATE_FIELD: Readonly<Record<PlayState, 'startingMs' | 'playingMs' | 'pausedMs' | 'seekMs' | 'rebufferMs'>> = {
  starting: 'startingMs',
  playing: 'playingMs',
  paused: 'pausedMs',
  seeking: 'seekMs',
  rebuffering: 'rebufferMs',
};

export function dimsKey(dims: Dims): string {
  return DIMENSIONS.map((d) => dims[d]).join('\u0001');
}

type WindowAt = (ms: number) => TruthWindow;

/** Accumulates windows for many views: dims key → window start → window (one string key per view). */
function createAccumulator(windowMs: number): { forView: (dims: Dims) => WindowAt; all: () => TruthWindow[] } {
  const byDims = new Map<string, Map<number, TruthWindow>>();
  return {
    forView(dims) {
      const dk = dimsKey(dims);
      const shared: Dims = { ...dims }; // one copy per view, shared by its windows
      let windows = byDims.get(dk);
      if (windows === undefined) {
        windows = new Map();
        byDims.set(dk, windows);
      }
      const own = windows;
      return (ms) => {
        const windowStartMs = windowStart(ms, windowMs);
        let w = own.get(windowStartMs);
        if (w === undefined) {
          w = { windowStartMs, dims: shared, ...emptyMetrics() };
          own.set(windowStartMs, w);
        }
        return w;
      };
    },
    all() {
      const keys = [...byDims.keys()].sort();
      const out: TruthWindow[] = [];
      // Stable sort by window start keeps the dims order inside a window.
      for (const k of keys) out.push(...(byDims.get(k)?.values() ?? []));
      return out.sort((a, b) => a.windowStartMs - b.windowStartMs);
    },
  };
}

function addView(tl: ViewTimeline, at: WindowAt, windowMs: number): void {
  at(tl.attemptMs).attempts += 1;
  const started = tl.firstFrameMs !== null;
  if (tl.firstFrameMs !== null) {
    const w = at(tl.firstFrameMs);
    w.plays += 1;
    w.vstMs.push(tl.firstFrameMs - tl.attemptMs);
  }
  const end = tl.ending;
  if (end.kind === 'fatal') at(end.ms)[started ? 'vpf' : 'vsf'] += 1;
  else if (end.kind === 'ended') at(end.ms).ended += 1;
  else if (end.kind === 'quit' && !started) at(end.ms).ebvs += 1;
  // A view that went silent before its first frame is an exit, dated by its last event.
  else if (end.kind === 'abandoned' && !started) at(tl.endMs).ebvs += 1;

  let prev: PlayState | null = null;
  for (const s of tl.segments) {
    const toMs = Math.min(s.toMs, tl.endMs);
    if (s.state === 'rebuffering' && prev !== 'rebuffering') at(s.fromMs).rebufferCount += 1;
    if (s.state === 'seeking' && prev !== 'seeking') at(s.fromMs).seekCount += 1;
    prev = s.state;
    for (let a = s.fromMs; a < toMs; ) {
      const b = Math.min(toMs, windowStart(a, windowMs) + windowMs);
      const ms = b - a;
      const w = at(a);
      w[STATE_FIELD[s.state]] += ms;
      w.activeMs += ms;
      if (s.state === 'playing' && s.bitrateKbps !== null) {
        const rate = String(s.bitrateKbps);
        w.playingMsByBitrateKbps[rate] = (w.playingMsByBitrateKbps[rate] ?? 0) + ms;
        w.bitsPlayed += s.bitrateKbps * ms;
      }
      a = b;
    }
  }
  for (const r of tl.requests) {
    if (r.ms > tl.endMs) continue;
    const w = at(r.ms);
    w.requests += 1;
    if (r.httpStatus >= 400 || r.httpStatus === 0) w.requestErrors += 1;
    if (r.ttfbMs !== null) w.ttfbMs.push(r.ttfbMs);
  }
}

function isZero(m: TruthMetrics): boolean {
  const counters = [m.attempts, m.plays, m.vsf, m.ebvs, m.vpf, m.ended, m.activeMs, m.rebufferCount, m.seekCount, m.requests];
  return counters.every((x) => x === 0) && m.vstMs.length === 0 && m.ttfbMs.length === 0;
}

/** A view as the truth needs it: its timeline, and its events only to count them. */
export interface TruthInput {
  timeline: ViewTimeline;
  events?: readonly SimEvent[];
}

export function computeTruth(views: readonly TruthInput[], windowMs: number = DEFAULT_WINDOW_MS): Truth {
  if (!Number.isInteger(windowMs) || windowMs <= 0) throw new Error('windowMs must be a positive integer');
  const acc = createAccumulator(windowMs);
  let events = 0;
  let firstEventMs = Number.POSITIVE_INFINITY;
  let lastEventMs = Number.NEGATIVE_INFINITY;
  for (const v of views) {
    addView(v.timeline, acc.forView(v.timeline.dims), windowMs);
    events += v.events?.length ?? 0;
    firstEventMs = Math.min(firstEventMs, v.timeline.attemptMs);
    lastEventMs = Math.max(lastEventMs, v.timeline.endMs);
  }
  const windows = acc.all().filter((w) => !isZero(w));
  const empty = views.length === 0;
  return {
    windowMs,
    startMs: empty ? 0 : windowStart(firstEventMs, windowMs),
    endMs: empty ? 0 : windowStart(lastEventMs, windowMs) + windowMs,
    firstEventMs: empty ? 0 : firstEventMs,
    lastEventMs: empty ? 0 : lastEventMs,
    views: views.length,
    events,
    windows,
  };
}
