import { addToHistogram, emptyHistogram, mergeHistograms, type Histogram } from '../lib/histogram.js';
import { DIMENSIONS, type Dims } from '../schemas/events.js';

/**
 * The per window × dimension-set accumulator. Every field is a sum or a mergeable histogram, so
 * merge() is associative and commutative and a row can be re-aggregated anywhere (see docs/metrics.md).
 * Time fields are signed: a retraction is an accumulator with negative values.
 */
export interface WindowAcc {
  attempts: number;
  plays: number;
  vsf: number;
  ebvs: number;
  vpf: number;
  ended: number;
  vstCount: number;
  vstSumMs: number;
  vstHist: Histogram;
  startingMs: number;
  playingMs: number;
  pausedMs: number;
  rebufferMs: number;
  rebufferCount: number;
  seekMs: number;
  seekCount: number;
  activeMs: number;
  /** Playing ms per bitrate bucket index (see BITRATE_BUCKETS_KBPS). */
  bitrateMs: Map<number, number>;
  /** Σ bitrateKbps × playing ms = bits played. */
  bitsPlayed: number;
  droppedFrames: number;
  requests: number;
  requestErrors: number;
  ttfbHist: Histogram;
  ttlbSumMs: number;
  /** `${fatal ? 1 : 0}:${code}` → count. */
  errors: Map<string, number>;
}

/** Lower bounds (kbps) of the fixed bitrate buckets; bucket i is [B[i], B[i+1]). */
export const BITRATE_BUCKETS_KBPS = [0, 300, 600, 1000, 1500, 2000, 3000, 4000, 5000, 6000, 8000, 10000, 15000, 20000, 30000] as const;

export function bitrateBucket(kbps: number): number {
  let i = 0;
  while (i + 1 < BITRATE_BUCKETS_KBPS.length && kbps >= (BITRATE_BUCKETS_KBPS[i + 1] ?? Infinity)) i++;
  return i;
}

export function bitrateBucketLabel(i: number): string {
  const lo = BITRATE_BUCKETS_KBPS[i];
  const hi = BITRATE_BUCKETS_KBPS[i + 1];
  return hi === undefined ? `${lo}+` : `${lo}-${hi}`;
}

export const SUM_FIELDS = [
  'attempts', 'plays', 'vsf', 'ebvs', 'vpf', 'ended', 'vstCount', 'vstSumMs', 'startingMs', 'playingMs',
  'pausedMs', 'rebufferMs', 'rebufferCount', 'seekMs', 'seekCount', 'activeMs', 'bitsPlayed',
  'droppedFrames', 'requests', 'requestErrors', 'ttlbSumMs',
] as const satisfies ReadonlyArray<keyof WindowAcc>;
export type SumField = (typeof SUM_FIELDS)[number];

/** The one map NO_COUNTS is: empty, and refusing writes (a write would reach every accumulator holding it). */
class NoCounts extends Map<never, number> {
  override set(): this {
    throw new TypeError('NO_COUNTS is shared by accumulators without counts: give the accumulator a map of its own first');
  }

  override delete(): boolean {
    return false;
  }

  override clear(): void {}
}

/**
 * The errors and TTFB histogram of an accumulator that has none yet: one shared empty map, replaced
 * by a map of the accumulator's own at its first count (addError, addTtfb). Most accumulators never
 * get one — errors are rare, TTFB comes with CMCD request reports only — and two empty Maps were
 * ~340 B of every accumulator, kept (and promoted) while its window is open.
 */
export const NO_COUNTS: Map<never, number> = new NoCounts();

/** `entries` as an accumulator's errors or TTFB histogram (a restored one): NO_COUNTS when there are none. */
export function countsOf<K>(entries: ReadonlyArray<readonly [K, number]>): Map<K, number> {
  return entries.length === 0 ? NO_COUNTS : new Map(entries);
}

export function emptyAcc(): WindowAcc {
  return {
    attempts: 0, plays: 0, vsf: 0, ebvs: 0, vpf: 0, ended: 0, vstCount: 0, vstSumMs: 0, vstHist: emptyHistogram(),
    startingMs: 0, playingMs: 0, pausedMs: 0, rebufferMs: 0, rebufferCount: 0, seekMs: 0, seekCount: 0, activeMs: 0,
    bitrateMs: new Map(), bitsPlayed: 0, droppedFrames: 0, requests: 0, requestErrors: 0, ttfbHist: NO_COUNTS,
    ttlbSumMs: 0, errors: NO_COUNTS,
  };
}

function mergeCounts<K>(a: Map<K, number>, b: Map<K, number>): Map<K, number> {
  const out = new Map(a);
  for (const [k, v] of b) out.set(k, (out.get(k) ?? 0) + v);
  return out;
}

export function mergeAcc(a: WindowAcc, b: WindowAcc): WindowAcc {
  const out = emptyAcc();
  for (const f of SUM_FIELDS) out[f] = a[f] + b[f];
  out.vstHist = mergeHistograms(a.vstHist, b.vstHist);
  out.ttfbHist = mergeHistograms(a.ttfbHist, b.ttfbHist);
  out.bitrateMs = mergeCounts(a.bitrateMs, b.bitrateMs);
  out.errors = mergeCounts(a.errors, b.errors);
  return out;
}

export function addVst(acc: WindowAcc, ms: number): void {
  acc.vstCount += 1;
  acc.vstSumMs += ms;
  addToHistogram(acc.vstHist, ms);
}

export function addTtfb(acc: WindowAcc, ms: number): void {
  if (acc.ttfbHist === NO_COUNTS) acc.ttfbHist = emptyHistogram();
  addToHistogram(acc.ttfbHist, ms);
}

export function addError(acc: WindowAcc, code: string, fatal: boolean): void {
  if (acc.errors === NO_COUNTS) acc.errors = new Map();
  const k = `${fatal ? 1 : 0}:${code}`;
  acc.errors.set(k, (acc.errors.get(k) ?? 0) + 1);
}

/** True when every field is zero (nothing worth emitting). */
export function isEmptyAcc(acc: WindowAcc): boolean {
  if (SUM_FIELDS.some((f) => acc[f] !== 0)) return false;
  for (const m of [acc.vstHist, acc.ttfbHist, acc.bitrateMs, acc.errors] as Array<Map<unknown, number>>) {
    for (const v of m.values()) if (v !== 0) return false;
  }
  return true;
}

/** Stable key of a dimension set (NUL-separated values in DIMENSIONS order). */
export function dimsKey(d: Dims): string {
  return DIMENSIONS.map((k) => d[k]).join('\u0000');
}

export function dimsFromKey(key: string): Dims {
  const parts = key.split('\u0000');
  const d = {} as Dims;
  DIMENSIONS.forEach((k, i) => (d[k] = parts[i] ?? ''));
  return d;
}
