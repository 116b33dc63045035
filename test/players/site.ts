/**
 * The page server: the player pages (test/players/pages/), the players' own dist files from
 * node_modules, and the manifests templated for this run (origins and steering server known only
 * now). Everything on 127.0.0.1, port 0.
 */
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { dashMpd, hlsMultivariant, type Pathway } from './manifests.js';
import { REPO_ROOT, type Media } from './media.js';

const PAGES = join(REPO_ROOT, 'test/players/pages');

/** URL path → file, both players' production builds as their npm packages ship them. */
const STATIC: Record<string, { file: string; type: string }> = {
  '/hls.html': { file: join(PAGES, 'hls.html'), type: 'text/html; charset=utf-8' },
  '/dash.html': { file: join(PAGES, 'dash.html'), type: 'text/html; charset=utf-8' },
  '/common.js': { file: join(PAGES, 'common.js'), type: 'text/javascript' },
  '/lib/hls.js': { file: join(REPO_ROOT, 'node_modules/hls.js/dist/hls.min.js'), type: 'text/javascript' },
  '/lib/dash.js': { file: join(REPO_ROOT, 'node_modules/dashjs/dist/modern/umd/dash.all.min.js'), type: 'text/javascript' },
};

export interface SiteOptions {
  media: Media;
  /**
   * `/edge/v1/cmcd` forwards to this collector with `headers` added, as a CDN edge in front of the
   * collector adds the viewer's country: same origin for the page, so no CORS in the way.
   */
  edge?: { collectorUrl: string; headers: Record<string, string> };
  pathways: readonly Pathway[];
  /** Steering server URLs (undefined: the manifest carries no steering tag). */
  steering: { hls: string | undefined; dash: string | undefined };
}

/** What a page reads from its `cfg` query parameter (pages/common.js). */
export interface PageConfig {
  src: string;
  collector: string;
  sid: string;
  cid: string;
  /** Seconds between CMCD `e=t` interval reports. */
  intervalS: number;
  /** origin host:port → CDN name put in the records' `cdn` key (players do not send one). */
  cdnByHost: Record<string, string>;
  initialCdn: string;
  /** Remove `ttfb` values that are timestamps, not durations (dash.js 5.2.1; see pages/common.js). */
  dropAbsoluteTtfb?: boolean;
  /** Forward buffer target (s): small keeps the player fetching steadily (the closed-loop test). */
  maxBufferS?: number;
}

export interface Site {
  url: string;
  hlsUrl: string;
  dashUrl: string;
  /** The collector behind the edge (SiteOptions.edge). */
  edgeCollectorUrl: string;
  pageUrl(player: 'hls' | 'dash', cfg: PageConfig): string;
  close(): Promise<void>;
}

async function forward(req: IncomingMessage, res: ServerResponse, edge: NonNullable<SiteOptions['edge']>): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const headers: Record<string, string> = { ...edge.headers };
  for (const h of ['content-type', 'user-agent']) {
    const v = req.headers[h];
    if (typeof v === 'string') headers[h] = v;
  }
  const upstream = await fetch(edge.collectorUrl, { method: req.method ?? 'POST', headers, body: req.method === 'POST' ? Buffer.concat(chunks) : undefined });
  const relay: Record<string, string> = {};
  upstream.headers.forEach((v, k) => {
    if (k.startsWith('cmcd-') || k === 'content-type' || k === 'retry-after') relay[k] = v;
  });
  res.writeHead(upstream.status, relay).end(Buffer.from(await upstream.arrayBuffer()));
}

export async function startSite(opts: SiteOptions): Promise<Site> {
  /**
   * `?first=B`: the manifest names pathway B as the initial one (PATHWAY-ID / defaultServiceLocation).
   * `?only=B`: pathway B alone and no content steering (a player that must stay where it is).
   */
  function manifestFor(path: string, first: string | null, only: string | null): { body: string; type: string } | undefined {
    const pathways = only === null
      ? [...opts.pathways].sort((x, y) => Number(y.id === first) - Number(x.id === first))
      : opts.pathways.filter((p) => p.id === only);
    const steering = only === null ? opts.steering : { hls: undefined, dash: undefined };
    if (path === '/stream/master.m3u8') return { body: hlsMultivariant(opts.media, pathways, steering.hls), type: 'application/vnd.apple.mpegurl' };
    if (path === '/stream/manifest.mpd') return { body: dashMpd(opts.media, pathways, steering.dash), type: 'application/dash+xml' };
    return undefined;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://site');
    const path = url.pathname;
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('Access-Control-Allow-Origin', '*');
    if (path === '/edge/v1/cmcd' && opts.edge) {
      await forward(req, res, opts.edge);
      return;
    }
    const manifest = manifestFor(path, url.searchParams.get('first'), url.searchParams.get('only'));
    if (manifest) {
      res.writeHead(200, { 'Content-Type': manifest.type }).end(manifest.body);
      return;
    }
    const entry = STATIC[path];
    if (path === '/favicon.ico') {
      res.writeHead(204).end(); // keeps Chromium's favicon 404 out of the console errors
      return;
    }
    if (!entry) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': entry.type }).end(await readFile(entry.file));
  }

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    hlsUrl: `${url}/stream/master.m3u8`,
    dashUrl: `${url}/stream/manifest.mpd`,
    edgeCollectorUrl: `${url}/edge/v1/cmcd`,
    pageUrl: (player, cfg) => `${url}/${player}.html?cfg=${encodeURIComponent(JSON.stringify(cfg))}`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
