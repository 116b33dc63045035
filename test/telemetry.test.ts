import { describe, expect, it } from 'vitest';
import { planRun, sendRun } from '../sim/simulate.js';
import { processorIsIdle, replayEnv, startTestRuntime, tempDataDir, waitUntil } from './helpers/runtime.js';

/** Parses Prometheus text format into name{labels} → value. */
function parseProm(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

describe('GET /metrics', () => {
  it('is scraped in Prometheus format and counts what the pipeline did', async () => {
    const { runtime } = await startTestRuntime(replayEnv(tempDataDir()));
    try {
      const run = planRun({ seed: 5, views: 40, startMs: Date.now() - 3 * 3_600_000 });
      await sendRun(run, { target: runtime.url });
      // One invalid event among valid ones: counted as rejected.
      const bad = await fetch(`${runtime.url}/v1/beacons`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ events: [{ sessionId: 'x', seq: 0, ts: Date.now() - 3_600_000, type: 'heartbeat' }, { sessionId: 'x', seq: 1, type: 'nope' }] }),
      });
      expect(bad.status).toBe(202);
      await waitUntil('pipeline idle', () => processorIsIdle(runtime), 60_000);
      await runtime.drain();

      const res = await fetch(`${runtime.url}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('text/plain');
      const m = parseProm(await res.text());
      expect(m.get('qoe_ingest_events_total{outcome="accepted"}')).toBe(run.truth.events + 1);
      expect(m.get('qoe_ingest_events_total{outcome="rejected"}')).toBe(1);
      expect(m.get('qoe_processor_events_total{outcome="ok"}')).toBe(run.truth.events + 1);
      const rows = await runtime.store.query<{ n: number }>('SELECT count() AS n FROM qoe_metrics');
      expect(m.get('qoe_sink_rows_total{table="qoe_metrics"}')).toBe(Number(rows[0]?.n));
      expect(m.get('qoe_bus_lag_records{group="qoe-processor"}')).toBe(0);
      expect(m.get('qoe_processor_open_sessions')).toBe(0);
      expect(m.get('qoe_sink_insert_seconds_count{table="qoe_metrics"}')).toBeGreaterThan(0);
      // Every window row the processor sent became one qoe_metrics row; embedded, no changelog.
      expect(m.get('qoe_processor_window_rows_total')).toBe(Number(rows[0]?.n));
      expect(m.get('qoe_processor_commit_seconds_count')).toBeGreaterThan(0);
      expect(m.get('qoe_processor_changelog_records_total')).toBe(0);
      expect(m.get('qoe_processor_restore_seconds_count')).toBe(0);
      expect([...m.keys()].some((k) => k.startsWith('qoe_process_'))).toBe(true);
    } finally {
      await runtime.stop();
    }
  });
});
