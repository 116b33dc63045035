/**
 * `npm run simulate -- --target http://127.0.0.1:8080 --views 1000 --seed 42 [--truth truth.json] …`
 * The only place the simulator reads the clock, argv and the file system.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parseDegradation } from './model.js';
import { planRun, sendRun, summaryLine, type SimulateOptions } from './simulate.js';

const USAGE = `usage: npm run simulate -- [options]
  --target URL            ingest base URL (POST URL/v1/beacons); omitted = dry run
  --views N               views to simulate (1000)
  --seed N                PRNG seed (42)
  --start MS|now          epoch ms of the first attempt (default: now − period − max view length)
  --period-ms MS          attempts spread over this period (600000)
  --max-view-ms MS        cap on one view's length (1800000)
  --window-ms MS          truth window (10000)
  --truth FILE            write the ground truth JSON
  --events FILE           write every event as NDJSON, in send order
  --batch-size N          events per POST per view (20, max 500)
  --batch-interval-ms MS  flush a view's batch when its oldest event is this old (5000)
  --concurrency N         POSTs in flight (8)
  --max-retries N         retries per batch on 503/429/5xx/network errors (8)
  --degrade SPEC          e.g. cdn=cdn-a,country=US,at=60000,rebuffer=5,startFail=0.3,startup=3,ttfb=4 (repeatable)
  --requests              emit request events (CMCD rr style)
  --realtime              pace POSTs by simulated time instead of as fast as possible`;

function int(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new Error(`--${name} must be an integer, got "${v}"`);
  return n;
}

/**
 * The pipeline corrects client clocks (docs/metrics.md "Clock skew"): a session whose first event is
 * older than QOE_MAX_CLOCK_SKEW_MS, or any event ahead of the server by QOE_MAX_CLOCK_AHEAD_MS, is
 * shifted, and then its windows no longer match the truth. Say so before sending.
 */
function clockHint(firstEventMs: number, lastEventMs: number, nowMs: number, realtime: boolean): string | null {
  if (realtime) return null;
  if (lastEventMs > nowMs + 5_000) {
    return `note: events run until ${Math.round((lastEventMs - nowMs) / 1000)} s in the future; without --realtime the pipeline caps them (QOE_MAX_CLOCK_AHEAD_MS) and windows will not match the truth`;
  }
  const ageMs = nowMs - firstEventMs;
  if (ageMs > 300_000) {
    return `note: events are up to ${Math.ceil(ageMs / 60_000)} min old; for an exact truth comparison run the pipeline with QOE_MAX_CLOCK_SKEW_MS ≥ ${Math.ceil(ageMs / 60_000) * 60_000 + 600_000}`;
  }
  return null;
}

export async function main(argv: readonly string[]): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      target: { type: 'string' },
      views: { type: 'string' },
      seed: { type: 'string' },
      start: { type: 'string' },
      'period-ms': { type: 'string' },
      'max-view-ms': { type: 'string' },
      'window-ms': { type: 'string' },
      truth: { type: 'string' },
      events: { type: 'string' },
      'batch-size': { type: 'string' },
      'batch-interval-ms': { type: 'string' },
      concurrency: { type: 'string' },
      'max-retries': { type: 'string' },
      degrade: { type: 'string', multiple: true },
      requests: { type: 'boolean' },
      realtime: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help === true) {
    console.log(USAGE);
    return 0;
  }
  const periodMs = int('period-ms', values['period-ms']) ?? 600_000;
  const maxViewMs = int('max-view-ms', values['max-view-ms']) ?? 1_800_000;
  const nowMs = Date.now();
  const startMs =
    values.start === 'now' || (values.start === undefined && values.realtime === true)
      ? nowMs
      : (int('start', values.start) ?? Math.floor((nowMs - periodMs - maxViewMs) / 60_000) * 60_000);
  const opts: SimulateOptions = {
    target: values.target ?? null,
    views: int('views', values.views) ?? 1000,
    seed: int('seed', values.seed) ?? 42,
    startMs,
    periodMs,
    maxViewMs,
    windowMs: int('window-ms', values['window-ms']) ?? 10_000,
    batchSize: int('batch-size', values['batch-size']) ?? 20,
    batchIntervalMs: int('batch-interval-ms', values['batch-interval-ms']) ?? 5000,
    concurrency: int('concurrency', values.concurrency) ?? 8,
    maxRetries: int('max-retries', values['max-retries']) ?? 8,
    degrade: (values.degrade ?? []).map(parseDegradation),
    requests: values.requests === true,
    realtime: values.realtime === true,
  };
  const run = planRun(opts);
  const truth = run.truth;
  // Written before sending, so a consumer can start comparing while the run is in flight.
  if (values.truth !== undefined) writeFileSync(values.truth, `${JSON.stringify(truth)}\n`);
  if (values.events !== undefined) {
    const all = run.batches.flatMap((b) => b.events);
    writeFileSync(values.events, all.map((e) => JSON.stringify(e)).join('\n') + '\n');
  }
  const hint = clockHint(truth.firstEventMs, truth.lastEventMs, nowMs, opts.realtime === true);
  if (opts.target !== null && hint !== null) console.error(hint);
  const stats = await sendRun(run, opts);
  console.log(`${summaryLine(stats)} startMs=${startMs} truthWindows=${truth.windows.length}`);
  return stats.failedEvents > 0 ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    console.error(USAGE);
    process.exitCode = 2;
  },
);
