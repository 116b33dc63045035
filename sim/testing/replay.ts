/**
 * Test-only: an independent reading of the truth contract from the EVENTS (what the pipeline sees),
 * used to check that the emitted events and the timeline-based truth agree.
 */
import { DIMENSIONS, emptyDims, type Dims } from '../../schemas/events.js';
import type { SimEvent } from '../emit.js';
import { emptyMetrics, windowStart, type Truth, type TruthWindow } from '../truth.js';

type State = 'starting' | 'playing' | 'paused' | 'seeking' | 'rebuffering';

const FIELD = { starting: 'startingMs', playing: 'playingMs', paused: 'pausedMs', seeking: 'seekMs', rebuffering: 'rebufferMs' } as const;

function dimsOf(e: SimEvent): Dims {
  const d = emptyDims();
  for (const k of DIMENSIONS) {
    const v = e[k];
    if (v !== undefined) d[k] = String(v);
  }
  return d;
}

export function replayEvents(events: readonly SimEvent[], windowMs: number): TruthWindow[] {
  const bySession = new Map<string, SimEvent[]>();
  for (const e of events) {
    const list = bySession.get(e.sessionId) ?? [];
    list.push(e);
    bySession.set(e.sessionId, list);
  }
  const out = new Map<string, TruthWindow>();
  for (const list of bySession.values()) {
    list.sort((a, b) => a.seq - b.seq);
    const first = list[0];
    if (first === undefined) continue;
    const dims = dimsOf(first);
    const at = (ms: number): TruthWindow => {
      const ws = windowStart(ms, windowMs);
      const key = `${ws}|${JSON.stringify(dims)}`;
      let w = out.get(key);
      if (w === undefined) {
        w = { windowStartMs: ws, dims, ...emptyMetrics() };
        out.set(key, w);
      }
      return w;
    };
    let state: State = 'starting';
    let started = false;
    let terminal = false;
    let bitrate = 0;
    let requestMs = first.ts;
    for (let i = 0; i < list.length; i++) {
      const e = list[i];
      if (e === undefined) continue;
      const prev: State = state;
      switch (e.type) {
        case 'play_request':
          at(e.ts).attempts += 1;
          requestMs = e.ts;
          break;
        case 'first_frame':
          started = true;
          state = 'playing';
          bitrate = e.bitrateKbps ?? bitrate;
          at(e.ts).plays += 1;
          at(e.ts).vstMs.push(e.ts - requestMs);
          break;
        case 'playing':
        case 'paused':
          if (started) state = e.type;
          break;
        case 'seeking':
        case 'rebuffering':
          if (started) {
            state = e.type;
            if (prev !== state) at(e.ts)[e.type === 'seeking' ? 'seekCount' : 'rebufferCount'] += 1;
          }
          break;
        case 'bitrate_change':
          bitrate = e.bitrateKbps ?? bitrate;
          break;
        case 'request': {
          const w = at(e.ts);
          w.requests += 1;
          if ((e.httpStatus ?? 0) >= 400 || e.httpStatus === 0) w.requestErrors += 1;
          if (e.ttfbMs !== undefined) w.ttfbMs.push(e.ttfbMs);
          break;
        }
        case 'error':
          if (e.errorFatal === true) {
            at(e.ts)[started ? 'vpf' : 'vsf'] += 1;
            terminal = true;
          }
          break;
        case 'ended':
          at(e.ts).ended += 1;
          terminal = true;
          break;
        case 'quit':
          if (!started) at(e.ts).ebvs += 1;
          terminal = true;
          break;
        default:
          break;
      }
      const next = list[i + 1];
      if (next === undefined) {
        if (!terminal && !started) at(e.ts).ebvs += 1;
        break;
      }
      for (let a = e.ts; a < next.ts; ) {
        const b = Math.min(next.ts, windowStart(a, windowMs) + windowMs);
        const w = at(a);
        w[FIELD[state]] += b - a;
        w.activeMs += b - a;
        if (state === 'playing') {
          w.playingMsByBitrateKbps[String(bitrate)] = (w.playingMsByBitrateKbps[String(bitrate)] ?? 0) + (b - a);
          w.bitsPlayed += bitrate * (b - a);
        }
        a = b;
      }
    }
  }
  return [...out.values()];
}

/** Windows in a canonical order with sorted samples and no all-zero entries, for deep equality. */
export function canonicalWindows(windows: readonly TruthWindow[]): TruthWindow[] {
  return windows
    .filter((w) => w.attempts + w.plays + w.vsf + w.ebvs + w.vpf + w.ended + w.activeMs + w.rebufferCount + w.seekCount + w.requests > 0)
    .map((w) => ({
      ...w,
      vstMs: [...w.vstMs].sort((a, b) => a - b),
      ttfbMs: [...w.ttfbMs].sort((a, b) => a - b),
      playingMsByBitrateKbps: Object.fromEntries(Object.entries(w.playingMsByBitrateKbps).filter(([, ms]) => ms > 0).sort()),
    }))
    .sort((a, b) => a.windowStartMs - b.windowStartMs || JSON.stringify(a.dims).localeCompare(JSON.stringify(b.dims)));
}

export function canonicalTruth(t: Truth): TruthWindow[] {
  return canonicalWindows(t.windows);
}
