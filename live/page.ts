import { ERRORS } from '../lib/errors.js';

/**
 * The live page as a fastify plugin (docs/live.md):
 *   GET /, GET /live        redirect to /live/
 *   GET /live/              the page (static HTML, CSS and one vanilla JS module, served from memory)
 *   GET /v1/live/stream     text/event-stream of LiveSnapshot, one shared computation per tick
 * The page polls GET /v1/steering/kill-switch and /v1/steering/decisions itself when they exist.
 */
import { readFileSync } from 'node:fs';
import type {} from '@fastify/swagger'; // route schema `hide`, `summary`, `tags`
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { Logger } from '../lib/logger.js';
import { projectPath } from '../lib/paths.js';
import type { Store } from '../lib/store/types.js';
import { buildMetricsSql, finalizeRow, type MetricsPoint, type MetricsQuery } from '../query/metrics.js';
import { createLiveHub, type LiveHub } from './hub.js';
import { buildSnapshot, liveQueries, resolveLiveSettings, type LiveOptions, type LiveSettings, type LiveSnapshot } from './snapshot.js';

export interface LivePageDeps {
  store: Store;
  windowMs: number;
  now(): number;
  log?: Logger;
  /** Snapshot ranges and highlighting thresholds (defaults in snapshot.ts and docs/live.md). */
  options?: LiveOptions;
  /** Push interval. Default 5000 ms. */
  intervalMs?: number;
  /** SSE comment heartbeat. Default 15 000 ms. */
  heartbeatMs?: number;
  /** Concurrent SSE clients; more get 503. Default 50. */
  maxClients?: number;
  /** Unsent bytes per client before it is disconnected. Default 1 MiB. */
  maxBufferedBytes?: number;
  /** Receives the hub, e.g. for stats in tests or /metrics. */
  onHub?(hub: LiveHub): void;
}

/** This module's codes from the one catalogue (lib/errors.ts). */
export const LIVE_ERRORS = { QOE_ERR_LIVE_TOO_MANY_CLIENTS: ERRORS.QOE_ERR_LIVE_TOO_MANY_CLIENTS } as const;

/** How far back the freshness query looks for the newest stored window. */
const FRESHNESS_LOOKBACK_MS = 24 * 3_600_000;

const ASSETS = {
  'index.html': 'text/html; charset=utf-8',
  'live.css': 'text/css; charset=utf-8',
  'live.js': 'text/javascript; charset=utf-8',
} as const;
type AssetName = keyof typeof ASSETS;

// Everything comes from this origin: no inline script, no CDN, no framework.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

function loadAssets(): Record<AssetName, Buffer> {
  const out = {} as Record<AssetName, Buffer>;
  for (const name of Object.keys(ASSETS) as AssetName[]) out[name] = readFileSync(projectPath('live', 'public', name));
  return out;
}

async function runQuery(store: Store, q: MetricsQuery): Promise<MetricsPoint[]> {
  const { sql, params } = buildMetricsSql(q);
  const rows = await store.query(sql, params);
  return rows.map((r) => finalizeRow(r, q));
}

/** One tick: three metrics queries (the GET /v1/metrics code path) and the freshness probe. */
export async function computeSnapshot(store: Store, settings: LiveSettings, nowMs: number): Promise<LiveSnapshot> {
  const queries = liveQueries(nowMs, settings);
  const [series, headline, table, fresh] = await Promise.all([
    runQuery(store, queries.series),
    runQuery(store, queries.headline),
    runQuery(store, queries.table),
    store.query<{ n: number | string; last_s: number | string }>(
      'SELECT count() AS n, toUInt32(max(window_start)) AS last_s FROM qoe_metrics WHERE window_start >= {since:DateTime}',
      { since: nowMs - FRESHNESS_LOOKBACK_MS },
    ),
  ]);
  const f = fresh[0];
  const lastWindowStartMs = f && Number(f.n) > 0 ? Number(f.last_s) * 1000 : null;
  return buildSnapshot({ nowMs, settings, queries, series, headline, table, lastWindowStartMs });
}

export function livePage(deps: LivePageDeps): FastifyPluginAsync {
  const settings = resolveLiveSettings(deps.windowMs, deps.options);
  const assets = loadAssets();
  const log = deps.log?.child({ component: 'live' });
  const maxClients = deps.maxClients ?? 50;

  return async function livePagePlugin(app) {
    const hub = createLiveHub({
      compute: () => computeSnapshot(deps.store, settings, deps.now()),
      intervalMs: deps.intervalMs ?? 5000,
      heartbeatMs: deps.heartbeatMs ?? 15_000,
      maxClients,
      maxBufferedBytes: deps.maxBufferedBytes ?? 1024 * 1024,
      onError: (err) => log?.warn({ err }, 'live snapshot failed'),
    });
    deps.onHub?.(hub);
    // Open event streams would keep server.close() waiting: end them first.
    app.addHook('preClose', async () => hub.close());

    function asset(reply: FastifyReply, name: AssetName): FastifyReply {
      return reply
        .type(ASSETS[name])
        .header('Cache-Control', 'no-cache')
        .header('X-Content-Type-Options', 'nosniff')
        .header('Content-Security-Policy', CSP)
        .send(assets[name]);
    }

    const hide = { schema: { hide: true } };
    app.get('/', hide, async (_req, reply) => reply.redirect('/live/'));
    app.get('/live', hide, async (_req, reply) => reply.redirect('/live/'));
    app.get('/live/', hide, async (_req, reply) => asset(reply, 'index.html'));
    app.get('/live/live.css', hide, async (_req, reply) => asset(reply, 'live.css'));
    app.get('/live/live.js', hide, async (_req, reply) => asset(reply, 'live.js'));

    app.get('/v1/live/stream', {
      schema: { summary: 'Server-Sent Events: a LiveSnapshot every few seconds (docs/live.md)', tags: ['live'] },
    }, async function liveStream(request, reply) {
      if (hub.stats().clients >= maxClients) {
        const e = LIVE_ERRORS.QOE_ERR_LIVE_TOO_MANY_CLIENTS;
        return reply.code(e.status).header('Retry-After', '5').send({ error: { code: 'QOE_ERR_LIVE_TOO_MANY_CLIENTS', message: e.message } });
      }
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'Content-Type': 'text/event-stream; charset=utf-8',
        'Cache-Control': 'no-cache, no-transform',
        Connection: 'keep-alive',
        // nginx would otherwise buffer the stream.
        'X-Accel-Buffering': 'no',
      });
      res.flushHeaders();
      if (!hub.add(res)) res.end();
      request.raw.socket.setNoDelay(true);
      res.on('close', () => hub.remove(res));
      return reply;
    });
  };
}
