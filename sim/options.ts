/**
 * Model options with documented defaults, and the `--degrade` specification: a fault injected for
 * one cdn × country from a time offset on.
 */
import type { Dims } from '../schemas/events.js';

export interface Degradation {
  /** Only views on this CDN (null = any). */
  cdn: string | null;
  /** Only views from this country (null = any). */
  country: string | null;
  /** Offset from the run's startMs at which the fault begins. */
  atMs: number;
  /** Offset at which it ends (null = never). */
  untilMs: number | null;
  /** Multiplier of the rebuffer (stall) rate. */
  rebuffer: number;
  /** Probability that an attempt fails to start (replaces the base rate when higher); null = unchanged. */
  startFail: number | null;
  /** Multiplier of the startup delay. */
  startup: number;
  /** Multiplier of request time to first byte. */
  ttfb: number;
}

export interface ModelOptions {
  views: number;
  seed: number;
  /** Epoch ms of the first possible attempt. */
  startMs: number;
  /** Attempts are spread uniformly over [startMs, startMs + periodMs). */
  periodMs: number;
  liveShare: number;
  startupMedianMs: number;
  /** Shape of the lognormal startup delay. */
  startupSigma: number;
  startFailProb: number;
  /** Exit-before-start probability for starts under 5 s (×4 above). */
  ebvsProb: number;
  /** Probability the player goes silent before the first frame. */
  abandonBeforeStartProb: number;
  /** Probability of a resume seek during startup. */
  startupSeekProb: number;
  /** Probability of a `rebuffering` report during startup (still counted as starting). */
  startupStallProb: number;
  watchMedianMs: number;
  /** Hard cap of a view's length from its attempt. */
  maxViewMs: number;
  rebufferPerMin: number;
  rebufferMedianMs: number;
  seekPerMin: number;
  pausePerMin: number;
  switchPerMin: number;
  /** Non-fatal errors per playing minute. */
  errorPerMin: number;
  /** Fatal playback errors (VPF) per playing minute. */
  fatalPerMin: number;
  /** Probability a started view goes silent instead of sending `quit`. */
  abandonProb: number;
  /** Emit `request` events (CMCD e=rr style). */
  requests: boolean;
  /** Media segment duration: request cadence while playing. */
  segmentMs: number;
  heartbeatMs: number;
  degrade: Degradation[];
}

/** 2026-01-01T00:00:00Z: a fixed default so that runs without --start are reproducible. */
export const DEFAULT_START_MS = 1_767_225_600_000;

export function defaultModelOptions(): ModelOptions {
  return {
    views: 1000,
    seed: 42,
    startMs: DEFAULT_START_MS,
    periodMs: 600_000,
    liveShare: 0.3,
    startupMedianMs: 1200,
    startupSigma: 0.6,
    startFailProb: 0.02,
    ebvsProb: 0.03,
    abandonBeforeStartProb: 0.005,
    startupSeekProb: 0.05,
    startupStallProb: 0.03,
    watchMedianMs: 180_000,
    maxViewMs: 1_800_000,
    rebufferPerMin: 0.2,
    rebufferMedianMs: 1500,
    seekPerMin: 0.1,
    pausePerMin: 0.06,
    switchPerMin: 0.5,
    errorPerMin: 0.03,
    fatalPerMin: 0.004,
    abandonProb: 0.03,
    requests: false,
    segmentMs: 4000,
    heartbeatMs: 10_000,
    degrade: [],
  };
}

export function resolveModelOptions(partial: Partial<ModelOptions>): ModelOptions {
  const o = { ...defaultModelOptions(), ...partial };
  const positiveInts: (keyof ModelOptions)[] = ['periodMs', 'maxViewMs', 'segmentMs', 'heartbeatMs', 'startupMedianMs', 'watchMedianMs', 'rebufferMedianMs'];
  for (const k of positiveInts) {
    const v = o[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new Error(`model option ${k} must be a positive integer`);
  }
  if (!Number.isInteger(o.views) || o.views < 0) throw new Error('model option views must be an integer ≥ 0');
  if (!Number.isInteger(o.startMs)) throw new Error('model option startMs must be an integer epoch ms');
  return o;
}

/**
 * Parses `cdn=cdn-a,country=US,at=60000,until=120000,rebuffer=5,startFail=0.3,startup=3,ttfb=4`.
 * Every key is optional; multipliers default to 1.
 */
export function parseDegradation(spec: string): Degradation {
  const d: Degradation = { cdn: null, country: null, atMs: 0, untilMs: null, rebuffer: 1, startFail: null, startup: 1, ttfb: 1 };
  for (const part of spec.split(',')) {
    const trimmed = part.trim();
    if (trimmed === '') continue;
    const eq = trimmed.indexOf('=');
    if (eq <= 0) throw new Error(`--degrade: expected key=value, got "${trimmed}"`);
    const key = trimmed.slice(0, eq);
    const value = trimmed.slice(eq + 1);
    const num = (): number => {
      const n = Number(value);
      if (value === '' || !Number.isFinite(n) || n < 0) throw new Error(`--degrade: ${key} must be a number ≥ 0`);
      return n;
    };
    switch (key) {
      case 'cdn':
        d.cdn = value;
        break;
      case 'country':
        d.country = value.toUpperCase();
        break;
      case 'at':
        d.atMs = Math.round(num());
        break;
      case 'until':
        d.untilMs = Math.round(num());
        break;
      case 'rebuffer':
        d.rebuffer = num();
        break;
      case 'startFail':
        d.startFail = num();
        if (d.startFail > 1) throw new Error('--degrade: startFail is a probability (0..1)');
        break;
      case 'startup':
        d.startup = num();
        break;
      case 'ttfb':
        d.ttfb = num();
        break;
      default:
        throw new Error(`--degrade: unknown key "${key}"`);
    }
  }
  return d;
}

export interface Effect {
  rebuffer: number;
  startup: number;
  ttfb: number;
  /** Start-failure probability floor (0 = none). */
  startFail: number;
}

/** The combined effect of every degradation active for these dims at time tMs. */
export function effectAt(degrade: readonly Degradation[], dims: Dims, tMs: number, startMs: number): Effect {
  const e: Effect = { rebuffer: 1, startup: 1, ttfb: 1, startFail: 0 };
  for (const d of degrade) {
    if (d.cdn !== null && d.cdn !== dims.cdn) continue;
    if (d.country !== null && d.country !== dims.country) continue;
    if (tMs < startMs + d.atMs) continue;
    if (d.untilMs !== null && tMs >= startMs + d.untilMs) continue;
    e.rebuffer *= d.rebuffer;
    e.startup *= d.startup;
    e.ttfb *= d.ttfb;
    e.startFail = Math.max(e.startFail, d.startFail ?? 0);
  }
  return e;
}
