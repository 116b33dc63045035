/**
 * Programmatic API: model → truth → batches → (optionally) POST. Tests call `simulate()` or, without
 * a server, `planRun()`.
 */
import { planBatches, type Batch } from './batching.js';
import { generatePopulation, resolveModelOptions, type ModelOptions, type SimView } from './model.js';
import { sendBatches, type FetchLike, type SendStats } from './send.js';
import { computeTruth, DEFAULT_WINDOW_MS, type Truth } from './truth.js';

export interface SimulateOptions extends Partial<ModelOptions> {
  /** Ingest base URL; null/undefined = dry run (nothing is sent). */
  target?: string | null;
  /** Truth window. Default 10 000. */
  windowMs?: number;
  /** Events per POST per view. Default 20. */
  batchSize?: number;
  /** Flush a view's pending events once the oldest is this old (simulated ms). Default 5000. */
  batchIntervalMs?: number;
  concurrency?: number;
  maxRetries?: number;
  maxRetryDelayMs?: number;
  baseRetryDelayMs?: number;
  maxConsecutiveFailures?: number;
  realtime?: boolean;
  fetch?: FetchLike;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

export interface SimulateStats extends SendStats {
  views: number;
  dryRun: boolean;
}

export interface PlannedRun {
  options: ModelOptions;
  views: SimView[];
  truth: Truth;
  batches: Batch[];
}

const MODEL_KEYS = Object.keys(resolveModelOptions({})) as (keyof ModelOptions)[];

function modelPart(opts: SimulateOptions): Partial<ModelOptions> {
  const out: Partial<ModelOptions> = {};
  for (const k of MODEL_KEYS) {
    if (opts[k] !== undefined) Object.assign(out, { [k]: opts[k] });
  }
  return out;
}

/** Pure: the population, its truth and its batches. */
export function planRun(opts: SimulateOptions = {}): PlannedRun {
  const options = resolveModelOptions(modelPart(opts));
  const views = generatePopulation(options);
  const truth = computeTruth(views, opts.windowMs ?? DEFAULT_WINDOW_MS);
  const batches = planBatches(views, { batchSize: opts.batchSize ?? 20, batchIntervalMs: opts.batchIntervalMs ?? 5000 });
  return { options, views, truth, batches };
}

/** Sends a planned run (dry run without a target). */
export async function sendRun(run: PlannedRun, opts: SimulateOptions = {}): Promise<SimulateStats> {
  const views = run.views.length;
  if (opts.target === undefined || opts.target === null) {
    const events = run.views.reduce((n, v) => n + v.events.length, 0);
    return { views, dryRun: true, batches: run.batches.length, events, requests: 0, retries: 0, accepted: 0, rejected: 0, failedBatches: 0, failedEvents: 0, lastError: null, aborted: false, durationMs: 0 };
  }
  const sent = await sendBatches(run.batches, {
    target: opts.target,
    ...(opts.concurrency !== undefined && { concurrency: opts.concurrency }),
    ...(opts.maxRetries !== undefined && { maxRetries: opts.maxRetries }),
    ...(opts.maxRetryDelayMs !== undefined && { maxRetryDelayMs: opts.maxRetryDelayMs }),
    ...(opts.baseRetryDelayMs !== undefined && { baseRetryDelayMs: opts.baseRetryDelayMs }),
    ...(opts.maxConsecutiveFailures !== undefined && { maxConsecutiveFailures: opts.maxConsecutiveFailures }),
    ...(opts.realtime !== undefined && { realtime: opts.realtime, realtimeOriginMs: run.options.startMs }),
    ...(opts.fetch !== undefined && { fetch: opts.fetch }),
    ...(opts.sleep !== undefined && { sleep: opts.sleep }),
    ...(opts.now !== undefined && { now: opts.now }),
  });
  return { ...sent, views, dryRun: false };
}

export async function simulate(opts: SimulateOptions = {}): Promise<{ truth: Truth; stats: SimulateStats }> {
  const run = planRun(opts);
  return { truth: run.truth, stats: await sendRun(run, opts) };
}

export function summaryLine(stats: SimulateStats): string {
  const parts = [
    `views=${stats.views}`,
    `events=${stats.events}`,
    `batches=${stats.batches}`,
    `requests=${stats.requests}`,
    `retries=${stats.retries}`,
    `accepted=${stats.accepted}`,
    `rejected=${stats.rejected}`,
    `failed=${stats.failedEvents}`,
    `ms=${stats.durationMs}`,
  ];
  const head = stats.dryRun ? 'simulate (dry run, nothing sent):' : stats.aborted ? 'simulate (ABORTED):' : 'simulate:';
  const tail = stats.lastError === null ? '' : ` lastError="${stats.lastError}"`;
  return `${head} ${parts.join(' ')}${tail}`;
}
