import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type ConsoleMessage, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import type { FastifyPluginAsync } from 'fastify';
import { buildApp } from '../ingest/app.js';
import { silentLogger } from '../lib/logger.js';
import { projectPath } from '../lib/paths.js';
import type { Store } from '../lib/store/types.js';
import { livePage, type LivePageDeps } from '../live/page.js';
import { metricsRoute } from '../query/route.js';
import { aggregateTruth } from '../sim/aggregate.js';
import { planRun, sendRun } from '../sim/simulate.js';
import { createSteeringService, steeringRoutes } from '../steering/index.js';
import { processorIsIdle, replayEnv, startTestRuntime, tempDataDir, waitUntil } from './helpers/runtime.js';

/**
 * The live page in headless Chromium against the embedded pipeline: simulated traffic of the last
 * minutes → beacons → processor → sink → chDB → GET /v1/live/stream → the page.
 */

const WINDOW_MS = 10_000;
const READ_TOKEN = 'live-test-read-token';

let browser: Browser;
beforeAll(async () => {
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});
afterAll(async () => {
  await browser?.close();
});

/** buildApp (the real ingest app) with GET /v1/metrics, the live page and `extra`, on a free port; closed after the test. */
async function serve(deps: LivePageDeps, extra: FastifyPluginAsync[] = []): Promise<string> {
  const app = buildApp({
    http: { port: 0, host: '127.0.0.1', bodyLimitBytes: 1_048_576, corsOrigins: '*', trustProxy: false },
    log: silentLogger(),
    ipHashSecret: 'x',
    isReady: () => true,
    plugins: [metricsRoute(deps), livePage(deps), ...extra],
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  onTestFinished(() => app.close());
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
}

/** A page whose console errors and uncaught exceptions are collected. Expected: the 404/401 of a steering probe. */
async function open(url: string): Promise<{ page: Page; errors: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  onTestFinished(() => context.close());
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
  page.on('console', (msg: ConsoleMessage) => {
    if (msg.type() !== 'error') return;
    const expectedProbe = /\/v1\/steering\/kill-switch$/.test(msg.location().url) && /status of (404|401)/.test(msg.text());
    if (!expectedProbe) errors.push(`console: ${msg.text()} (${msg.location().url})`);
  });
  await page.goto(url);
  return { page, errors };
}

// No `document` in callbacks: this project's TypeScript has no DOM lib (and the page's CSP forbids string evaluation).
const updates = async (page: Page): Promise<number> => Number((await page.getAttribute('body', 'data-updates')) ?? 0);

describe('live page', () => {
  it('shows the simulated traffic of the last minutes, updates over SSE, and says steering is not enabled', async () => {
    const { runtime } = await startTestRuntime(replayEnv(tempDataDir(), { QOE_SESSION_TIMEOUT_MS: '20000' }));
    onTestFinished(() => runtime.stop());
    // Views in [now − 5 min, now − 3 min), each at most 1 min long: all of it is in the past, within the headline range.
    const startMs = Math.floor((Date.now() - 5 * 60_000) / WINDOW_MS) * WINDOW_MS;
    const run = planRun({ seed: 5, views: 200, startMs, periodMs: 120_000, maxViewMs: 60_000, watchMedianMs: 30_000, windowMs: WINDOW_MS, batchSize: 20, batchIntervalMs: 5000 });
    const stats = await sendRun(run, { target: runtime.url, concurrency: 8 });
    expect(stats.failedEvents).toBe(0);
    await waitUntil('every window closed and every session expired', () => processorIsIdle(runtime), 90_000);
    await runtime.drain();

    // A 10 min headline: every view stays in range however long the settling took.
    const options = { staleAfterMs: 10 * 60_000, headlineMs: 10 * 60_000 };
    const url = await serve({ store: runtime.store, windowMs: WINDOW_MS, now: Date.now, intervalMs: 1000, options });
    const { page, errors } = await open(`${url}/`);
    expect(page.url()).toBe(`${url}/live/`);
    await expect.poll(() => updates(page), { timeout: 20_000 }).toBeGreaterThanOrEqual(1);

    // One render: the headline range and the attempts shown, read together.
    const shown = await page.$eval('body', (body) => {
      const h = body.querySelector('#h-headline');
      const a = body.querySelector('#h-attempts');
      return { fromMs: Number(h?.getAttribute('data-from-ms')), toMs: Number(h?.getAttribute('data-to-ms')), attempts: Number(a?.getAttribute('data-value')), text: a?.textContent };
    });
    const res = await fetch(`${runtime.url}/v1/metrics?${new URLSearchParams({ from: String(shown.fromMs), to: String(shown.toMs), step: `${shown.toMs - shown.fromMs}ms`, metrics: 'attempts' })}`);
    const body = (await res.json()) as { points: Array<{ metrics: { attempts: number } }> };
    const expected = body.points.reduce((n, p) => n + p.metrics.attempts, 0);
    expect(expected).toBe(aggregateTruth(run.truth, ['cdn']).reduce((n, g) => n + g.attempts, 0));
    expect(shown.attempts).toBe(expected);
    expect(shown.text).toBe(expected.toLocaleString('en-US'));

    const cdns = await page.$$eval('#cdn-table tbody tr', (rows) => [...new Set(rows.map((r) => r.getAttribute('data-cdn')))].sort());
    expect(cdns).toEqual(['cdn-a', 'cdn-b', 'cdn-c']);
    const sparkPoints = await page.$$eval('#spark-attempts path.spark-line', (paths) => paths.map((p) => p.getAttribute('d') ?? '').join(' '));
    expect(sparkPoints.split(/[ML]/).filter((x) => x.trim() !== '').length).toBeGreaterThan(3);

    await expect.poll(() => page.textContent('#freshness-text'), { timeout: 10_000 }).toMatch(/^last window closed \d+ (s|min \d+ s) ago$/);
    expect(await page.getAttribute('#freshness', 'data-state')).toBe('fresh');
    await expect.poll(() => page.isVisible('#steering-note'), { timeout: 10_000 }).toBe(true);
    expect(await page.textContent('#steering-note')).toContain('steering not enabled');

    // Pushed, not reloaded: more snapshots arrive on the same page.
    const seen = await updates(page);
    await expect.poll(() => updates(page), { timeout: 15_000 }).toBeGreaterThanOrEqual(seen + 2);
    expect(await page.getAttribute('#connection', 'data-state')).toBe('live');

    mkdirSync(projectPath('test-artifacts'), { recursive: true });
    await page.screenshot({ path: projectPath('test-artifacts', 'live.png'), fullPage: true });
    expect(errors).toEqual([]);
  }, 240_000);

  it('shows the kill switch and the decisions feed when steering answers, with the token from the URL fragment', async () => {
    const empty: Store = {
      kind: 'chdb', exec: async () => undefined, insert: async () => undefined, version: async () => 'fake', close: async () => undefined,
      query: async <T,>() => [] as T[],
    };
    const service = createSteeringService({
      log: silentLogger(), now: Date.now, expirySweepMs: 0,
      config: { killSwitch: false, neutralPriority: ['cdn-a', 'cdn-b'], pathways: {}, tokens: [READ_TOKEN], adminTokens: [], scopeHeader: 'x-country', ttlSeconds: 30 },
    });
    await service.start();
    onTestFinished(() => service.stop());
    const url = await serve({ store: empty, windowMs: WINDOW_MS, now: Date.now, intervalMs: 1000 }, [steeringRoutes(service)]);

    const anonymous = await open(`${url}/live/`);
    await expect.poll(() => anonymous.page.textContent('#steering-note'), { timeout: 10_000 }).toContain('needs a read token');

    service.submit({
      scope: { country: 'BR', asn: '' }, priority: ['cdn-b', 'cdn-a'], action: 'demote', ttlMs: 600_000,
      reason: { metric: 'rebuffer_ratio', cdn: 'cdn-a', value: 0.08, baseline: 0.01, score: 7.5, windowStartMs: Date.now() - 60_000, windowMs: WINDOW_MS, detail: 'cdn-a rebuffering' },
    });
    const { page, errors } = await open(`${url}/live/#token=${READ_TOKEN}`);
    await expect.poll(() => page.getAttribute('#kill-switch', 'data-state'), { timeout: 10_000 }).toBe('off');
    expect(await page.isVisible('#steering-note')).toBe(false);
    const row = await page.$$eval('#decisions tbody tr', (rows) => rows.map((r) => [...r.querySelectorAll('td')].map((td) => td.textContent)));
    expect(row).toHaveLength(1);
    expect(row[0]?.slice(2, 5)).toEqual(['BR', 'demote', 'cdn-b › cdn-a']);
    // No traffic stored: the page says so instead of showing a stale age.
    await expect.poll(() => page.getAttribute('#freshness', 'data-state'), { timeout: 10_000 }).toBe('none');
    expect(await page.textContent('#h-attempts')).toBe('0');

    service.setKillSwitch(true, 'on-call');
    await expect.poll(() => page.getAttribute('#kill-switch', 'data-state'), { timeout: 15_000 }).toBe('on');
    expect(await page.textContent('#kill-switch')).toContain('by on-call');
    expect(errors).toEqual([]);
    expect(anonymous.errors).toEqual([]);
  }, 60_000);
});
