/** GET /v1/metrics for one content id over one bucket covering a test's whole run. */
import { bitrateBucket, bitrateBucketLabel } from '../../processors/accumulator.js';
import type { Runtime } from '../../lib/runtime.js';
import { processorIsIdle, waitUntil } from '../helpers/runtime.js';

export interface ViewMetrics {
  attempts: number;
  plays: number;
  vsf: number;
  vpf: number;
  ebvs: number;
  vstP50Ms: number | null;
  playingMs: number;
  rebufferMs: number;
  avgBitrateKbps: number | null;
  bitrateDistribution: Array<{ bucket: string; playingMs: number }>;
  requests: number;
  requestErrorRate: number | null;
  ttfbP50Ms: number | null;
}

export async function queryMetrics(runtime: Runtime, windowMs: number, sinceMs: number, filter: string, groupBy?: string): Promise<Array<{ group: Record<string, string>; metrics: ViewMetrics }>> {
  const from = Math.floor((sinceMs - 60_000) / windowMs) * windowMs;
  const to = Math.ceil((Date.now() + 60_000) / windowMs) * windowMs;
  const params = new URLSearchParams({ from: String(from), to: String(to), step: `${to - from}ms`, filter });
  if (groupBy !== undefined) params.set('group_by', groupBy);
  const res = await fetch(`${runtime.url}/v1/metrics?${params}`);
  if (res.status !== 200) throw new Error(`GET /v1/metrics ${res.status}: ${await res.text()}`);
  return ((await res.json()) as { points: Array<{ group: Record<string, string>; metrics: ViewMetrics }> }).points;
}

/** Waits until every session expired and every window is stored: the metrics are final. */
export async function settle(runtime: Runtime, timeoutMs = 90_000): Promise<void> {
  await waitUntil('processor to expire every session and close every window', () => processorIsIdle(runtime), timeoutMs);
  await runtime.drain();
}

export const bucketOf = (kbps: number): string => bitrateBucketLabel(bitrateBucket(kbps));
