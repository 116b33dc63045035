import { dailyFactor, type Degradation, type DegradationKind, type ScopeProfile } from './synth.js';

/** A labelled simulation: scopes, CDNs, the degradations injected and what the detector should do. */
export interface EvalScenario {
  name: string;
  seed: number;
  startMs: number;
  windowMs: number;
  windows: number;
  cdns: string[];
  scopes: ScopeProfile[];
  degradations: LabelledDegradation[];
}

/**
 * 'decision': a demotion of the degraded CDN is expected (one CDN, ≥ minConcurrent sessions on it);
 * 'none': any decision in the scope is false (all CDNs degrade together, or a tiny scope);
 * 'either': a real single-CDN degradation below the volume the targets are stated for.
 */
export type Expectation = 'decision' | 'none' | 'either';

export interface LabelledDegradation extends Degradation {
  expect: Expectation;
  /** Expected concurrent sessions on the (first) degraded CDN at onset. */
  concurrentAtStart: number;
}

export const WEEK_WINDOWS = 7 * 8_640;
export const CDNS = ['cdn-a', 'cdn-b', 'cdn-c'];
/** Monday 2026-01-05 00:00 UTC. */
export const SIM_START_MS = Date.UTC(2026, 0, 5);

export const SCOPES: ScopeProfile[] = [
  { country: 'US', peakConcurrent: 3_000, cdnShare: [0.45, 0.35, 0.2], utcOffsetHours: -5 },
  { country: 'DE', peakConcurrent: 600, cdnShare: [0.4, 0.35, 0.25], utcOffsetHours: 1 },
  { country: 'BR', peakConcurrent: 400, cdnShare: [0.34, 0.33, 0.33], utcOffsetHours: -3 },
  { country: 'JP', peakConcurrent: 1_500, cdnShare: [0.3, 0.3, 0.4], utcOffsetHours: 9 },
  { country: 'IS', peakConcurrent: 45, cdnShare: [0.34, 0.33, 0.33], utcOffsetHours: 0 },
];

/** Concurrent sessions of a CDN in a scope at a window (expected value of the synthetic draw). */
export function expectedConcurrent(scope: ScopeProfile, cdnIndex: number, windowStartMs: number): number {
  return scope.peakConcurrent * (scope.cdnShare[cdnIndex] ?? 0) * dailyFactor(windowStartMs, scope.utcOffsetHours);
}

interface Template {
  kind: DegradationKind;
  shape: 'step' | 'ramp';
  factor: number;
  cdn: number | 'all';
  durationWindows: number;
  lowVolumeScope?: boolean;
}

/** The cycle of incidents of the incident week (one every 3 hours, scopes rotating). */
const TEMPLATES: Template[] = [
  { kind: 'rebuffer', shape: 'step', factor: 2, cdn: 0, durationWindows: 180 },
  { kind: 'rebuffer', shape: 'step', factor: 5, cdn: 1, durationWindows: 180 },
  { kind: 'rebuffer', shape: 'ramp', factor: 4, cdn: 2, durationWindows: 360 },
  { kind: 'vsf', shape: 'step', factor: 5, cdn: 0, durationWindows: 180 },
  { kind: 'ttfb', shape: 'step', factor: 3, cdn: 1, durationWindows: 180 },
  { kind: 'rebuffer', shape: 'step', factor: 3, cdn: 'all', durationWindows: 180 },
  { kind: 'rebuffer', shape: 'step', factor: 5, cdn: 0, durationWindows: 180, lowVolumeScope: true },
  { kind: 'rebuffer', shape: 'step', factor: 2, cdn: 2, durationWindows: 180 },
  { kind: 'ttfb', shape: 'ramp', factor: 3, cdn: 0, durationWindows: 360 },
  { kind: 'vsf', shape: 'step', factor: 3, cdn: 2, durationWindows: 180 },
];

const MIN_CONCURRENT_FOR_TARGET = 50;

/** A week of steady traffic: every decision is false. */
export function steadyWeek(seed: number): EvalScenario {
  return { name: `steady week (seed ${seed})`, seed, startMs: SIM_START_MS, windowMs: 10_000, windows: WEEK_WINDOWS, cdns: CDNS, scopes: SCOPES, degradations: [] };
}

/** A week with one labelled incident every 3 hours, rotating over kinds, scopes and times of day. */
export function incidentWeek(seed: number): EvalScenario {
  const windowMs = 10_000;
  const slot = 1_080; // 3 h of 10-s windows
  const regular = SCOPES.filter((s) => s.peakConcurrent >= 400);
  const tiny = SCOPES.find((s) => s.peakConcurrent < 100);
  const degradations: LabelledDegradation[] = [];
  for (let i = 0; i * slot + slot <= WEEK_WINDOWS; i++) {
    const t = TEMPLATES[i % TEMPLATES.length];
    const scope = t?.lowVolumeScope ? tiny : regular[Math.floor(i / TEMPLATES.length + i) % regular.length];
    if (!t || !scope) continue;
    // Onset a little after the slot start (never on a round boundary); 1 h of warm-up for the first.
    const startWindow = i * slot + 360 + ((i * 37) % 90);
    const cdnIdx = t.cdn === 'all' ? 0 : t.cdn;
    const conc = expectedConcurrent(scope, cdnIdx, SIM_START_MS + startWindow * windowMs);
    const expect: Expectation = t.cdn === 'all' || t.lowVolumeScope ? 'none' : conc >= MIN_CONCURRENT_FOR_TARGET ? 'decision' : 'either';
    degradations.push({
      id: `${i}:${scope.country}:${t.kind}-${t.shape}-x${t.factor}:${t.cdn === 'all' ? 'all' : CDNS[t.cdn]}`,
      country: scope.country,
      cdns: t.cdn === 'all' ? [...CDNS] : [CDNS[t.cdn] ?? 'cdn-a'],
      kind: t.kind, shape: t.shape, factor: t.factor, startWindow, durationWindows: t.durationWindows, rampWindows: 60,
      expectDecision: expect === 'decision', expect, concurrentAtStart: conc,
    });
  }
  return { name: `incident week (seed ${seed})`, seed, startMs: SIM_START_MS, windowMs, windows: WEEK_WINDOWS, cdns: CDNS, scopes: SCOPES, degradations };
}
