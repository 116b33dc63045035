import type { AddressInfo } from 'node:net';
import { describe, expect, it, onTestFinished } from 'vitest';
import { buildApp } from '../ingest/app.js';
import { silentLogger } from '../lib/logger.js';
import type { Store } from '../lib/store/types.js';
import type { LiveHub } from '../live/hub.js';
import { livePage, type LivePageDeps } from '../live/page.js';
import type { LiveSnapshot } from '../live/snapshot.js';
import { waitUntil } from './helpers/runtime.js';

/** GET /v1/live/stream and the static page on a real socket, with a store that records its queries. */

function recordingStore(fail = false): Store & { queries: string[] } {
  const queries: string[] = [];
  return {
    kind: 'chdb', queries,
    exec: async () => undefined, insert: async () => undefined, version: async () => 'fake', close: async () => undefined,
    async query<T>(sql: string) {
      queries.push(sql);
      if (fail) throw new Error('store down');
      return [] as T[];
    },
  };
}

async function serve(over: Partial<LivePageDeps> & { store: Store }): Promise<{ url: string; hub: () => LiveHub; close(): Promise<void> }> {
  let hub: LiveHub | undefined;
  const app = buildApp({
    http: { port: 0, host: '127.0.0.1', bodyLimitBytes: 1_048_576, corsOrigins: '*', trustProxy: false },
    log: silentLogger(), ipHashSecret: 'x', isReady: () => true,
    plugins: [livePage({ windowMs: 10_000, now: Date.now, intervalMs: 60_000, onHub: (h) => (hub = h), ...over })],
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  onTestFinished(() => app.close());
  return { url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, hub: () => hub!, close: () => app.close() };
}

/** An open event stream: collects events until aborted (aborted after the test). */
async function subscribe(url: string): Promise<{ res: Response; events: Array<{ event: string; data: string }>; text: () => string; abort(): void }> {
  const ctl = new AbortController();
  onTestFinished(() => ctl.abort());
  const res = await fetch(`${url}/v1/live/stream`, { signal: ctl.signal });
  let text = '';
  const events: Array<{ event: string; data: string }> = [];
  if (res.ok && res.body) {
    void (async () => {
      const decoder = new TextDecoder();
      try {
        for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
          text += decoder.decode(chunk, { stream: true });
          const blocks = text.split('\n\n').filter((b) => b.startsWith('event: '));
          events.length = 0;
          for (const b of blocks) {
            const [ev, data] = b.split('\n');
            events.push({ event: ev?.slice(7) ?? '', data: data?.slice(6) ?? '' });
          }
        }
      } catch {
        // aborted
      }
    })();
  }
  return { res, events, text: () => text, abort: () => ctl.abort() };
}

describe('GET /v1/live/stream', () => {
  it('streams one shared snapshot computation to every client', async () => {
    const store = recordingStore();
    const { url, hub } = await serve({ store });
    const a = await subscribe(url);
    expect(a.res.status).toBe(200);
    expect(a.res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(a.res.headers.get('cache-control')).toBe('no-cache, no-transform');
    await waitUntil('first snapshot', () => a.events.length === 1, 10_000);
    const b = await subscribe(url);
    await waitUntil('second client gets the cached snapshot', () => b.events.length === 1, 10_000);
    expect(a.text().startsWith('retry: 60000\n\n')).toBe(true);
    // Three GET /v1/metrics queries and the freshness probe: once, not once per client.
    expect(store.queries).toHaveLength(4);
    // (Raw table or a roll-up, depending on how the clock aligns the ranges: either merges vst_hist.)
    expect(store.queries.filter((q) => /sumMap\(vst_hist_keys, vst_hist_counts\)|sumMapMerge\(vst_hist\)/.test(q))).toHaveLength(3);
    await hub().tick();
    await waitUntil('second tick on both', () => a.events.length === 2 && b.events.length === 2, 10_000);
    expect(store.queries).toHaveLength(8);
    const snap = JSON.parse(b.events[1]?.data ?? '') as LiveSnapshot;
    expect(snap).toMatchObject({ v: 1, windowMs: 10_000, freshness: { lastWindowEndMs: null } });
    expect(snap.headline.metrics.attempts).toBe(0);
  });

  it('refuses clients over the bound with 503 and frees the slot on disconnect', async () => {
    const { url, hub } = await serve({ store: recordingStore(), maxClients: 1 });
    const first = await subscribe(url);
    expect(first.res.status).toBe(200);
    const second = await fetch(`${url}/v1/live/stream`);
    expect(second.status).toBe(503);
    expect(second.headers.get('retry-after')).toBe('5');
    expect(await second.json()).toEqual({ error: { code: 'QOE_ERR_LIVE_TOO_MANY_CLIENTS', message: 'the live stream is at its client bound' } });
    first.abort();
    await waitUntil('client removed', () => hub().stats().clients === 0, 10_000);
    const third = await subscribe(url);
    expect(third.res.status).toBe(200);
  });

  it('app.close() ends open streams instead of waiting for them', async () => {
    const { url, hub, close } = await serve({ store: recordingStore() });
    const a = await subscribe(url);
    await waitUntil('first snapshot', () => a.events.length === 1, 10_000);
    const started = Date.now();
    await close();
    expect(Date.now() - started).toBeLessThan(2000);
    expect(hub().stats().clients).toBe(0);
  });

  it('sends query-error when the store fails', async () => {
    const { url } = await serve({ store: recordingStore(true) });
    const a = await subscribe(url);
    await waitUntil('error event', () => a.events.length === 1, 10_000);
    expect(a.events[0]).toEqual({ event: 'query-error', data: '{"code":"QOE_ERR_QUERY_FAILED","message":"metrics store query failed"}' });
  });

  it('heartbeats with comment lines', async () => {
    const { url } = await serve({ store: recordingStore(), heartbeatMs: 50 });
    const a = await subscribe(url);
    await waitUntil('a heartbeat', () => a.text().includes(': hb\n\n'), 10_000);
  });

  it('serves the page, its assets with a same-origin CSP, and redirects / and /live to /live/', async () => {
    const { url } = await serve({ store: recordingStore() });
    for (const path of ['/', '/live']) {
      const r = await fetch(`${url}${path}`, { redirect: 'manual' });
      expect(r.status).toBe(302);
      expect(r.headers.get('location')).toBe('/live/');
    }
    const page = await fetch(`${url}/live/`);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    const html = await page.text();
    expect(html).toContain('<script type="module" src="live.js"></script>');
    expect(html).not.toMatch(/https?:\/\//);
    for (const [asset, type] of [['live.js', 'text/javascript; charset=utf-8'], ['live.css', 'text/css; charset=utf-8']] as const) {
      const r = await fetch(`${url}/live/${asset}`);
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toBe(type);
      expect(await r.text()).not.toMatch(/https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
    }
  });
});
