/**
 * Media requests of one view (CMCD v2 `e=rr` style: httpStatus, ttfbMs, ttlbMs), drawn from the view's
 * state segments: back-to-back while starting, seeking or stalled, one per media segment while playing,
 * none while paused.
 */
import type { Dims } from '../schemas/events.js';
import type { Ending, RequestMark, Segment } from './model.js';
import { effectAt, type ModelOptions } from './options.js';
import { clamp, intBetween, lognormal, uniform, weighted, type Rng } from './prng.js';

const TTFB_MEDIAN_MS: Readonly<Record<string, number>> = { 'cdn-a': 45, 'cdn-b': 60, 'cdn-c': 80 };
const STATUSES: readonly (readonly [number, number])[] = [
  [200, 0.985],
  [404, 0.004],
  [500, 0.003],
  [503, 0.004],
  [0, 0.004], // network failure: no status, no bytes
];
/** Bound on requests per view (a 30 min view at 4 s segments needs ~450). */
const MAX_REQUESTS_PER_VIEW = 5000;

export function generateRequests(
  rng: Rng,
  segments: readonly Segment[],
  ending: Ending,
  dims: Dims,
  o: ModelOptions,
): RequestMark[] {
  const out: RequestMark[] = [];
  let t = segments[0]?.fromMs ?? ending.ms;
  let si = 0;
  while (out.length < MAX_REQUESTS_PER_VIEW && t < ending.ms) {
    while (si < segments.length - 1 && (segments[si]?.toMs ?? 0) <= t) si++;
    const seg = segments[si];
    if (seg === undefined) break;
    if (seg.state === 'paused') {
      t = Math.max(t + 1, seg.toMs);
      continue;
    }
    const effect = effectAt(o.degrade, dims, t, o.startMs);
    const status = weighted(rng, STATUSES);
    const ttfbMs = Math.round(clamp(lognormal(rng, (TTFB_MEDIAN_MS[dims.cdn] ?? 60) * effect.ttfb, 0.5), 2, 60_000));
    const busy = seg.state !== 'playing';
    const ttlbMs = ttfbMs + Math.round(clamp(lognormal(rng, busy ? 200 : 500, 0.6), 1, 120_000));
    const ms = t + ttlbMs;
    if (ms >= ending.ms) break;
    out.push(status === 0 ? { ms, httpStatus: 0, ttfbMs: null, ttlbMs: null } : { ms, httpStatus: status, ttfbMs, ttlbMs });
    t = ms + (busy ? intBetween(rng, 5, 50) : Math.round(o.segmentMs * uniform(rng, 0.8, 1.2)));
  }
  return out;
}
