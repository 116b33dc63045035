/**
 * Local "CDN" origins: node:http on 127.0.0.1, port 0, serving the same media directory. Each keeps
 * a request log and can be turned slow (latency before the response), failing (HTTP 5xx on
 * everything) or flaky (HTTP 5xx on the first attempts of each object, retries served) while a player
 * is using it.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, sep } from 'node:path';

/**
 * `flaky`: the first `failuresPerObject` requests of each path since the mode was set are answered
 * `status`, later ones (the player's retries) are served — an overloaded CDN shedding load. Unlike
 * `fail`, a player retrying the same URL gets its segment, so it has no reason to leave the origin
 * on its own (dash.js blacklists a service location only when a segment's retries are exhausted).
 */
export type OriginMode =
  | { kind: 'ok' }
  | { kind: 'slow'; delayMs: number }
  | { kind: 'fail'; status: number }
  | { kind: 'flaky'; status: number; failuresPerObject: number };

export interface OriginRequest {
  atMs: number;
  method: string;
  /** Path without the query string (players append CMCD query parameters). */
  path: string;
  status: number;
  mode: OriginMode['kind'];
  /** The player session, from the CMCD request-mode query (`CMCD=…sid="…"`) both players add to segment URLs. */
  sid: string | undefined;
}

export interface Origin {
  name: string;
  /** Base URL ending with '/'. */
  baseUrl: string;
  log: OriginRequest[];
  setMode(mode: OriginMode): void;
  /** Segment (.m4s) requests answered since `sinceMs`. */
  segmentRequests(sinceMs?: number): OriginRequest[];
  close(): Promise<void>;
}

const TYPES: Record<string, string> = {
  '.m3u8': 'application/vnd.apple.mpegurl',
  '.mpd': 'application/dash+xml',
  '.m4s': 'video/iso.segment',
  '.mp4': 'video/mp4',
};

/** Bound of the request log: a test never comes near it, a forgotten origin does not grow forever. */
const MAX_LOG = 100_000;
/** Bound of the flaky mode's per-path attempt counts (cleared at the bound: paths start failing again). */
const MAX_ATTEMPT_PATHS = 10_000;

export async function startOrigin(name: string, dir: string): Promise<Origin> {
  let mode: OriginMode = { kind: 'ok' };
  const log: OriginRequest[] = [];
  /** Flaky mode: requests per path since the mode was set. */
  const attempts = new Map<string, number>();
  const root = normalize(dir + sep);

  function record(req: IncomingMessage, path: string, status: number, kind: OriginMode['kind']): void {
    if (log.length >= MAX_LOG) log.shift();
    const cmcd = new URL(req.url ?? '/', 'http://origin').searchParams.get('CMCD') ?? '';
    const sid = /(?:^|,)sid="([^"]*)"/.exec(cmcd)?.[1];
    log.push({ atMs: Date.now(), method: req.method ?? 'GET', path, status, mode: kind, sid });
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = decodeURIComponent((req.url ?? '/').split('?')[0] ?? '/');
    // Players fetch from another origin (the page server): CORS on everything, preflights included.
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.setHeader('Access-Control-Allow-Headers', '*');
    res.setHeader('Cache-Control', 'no-store');
    if (req.method === 'OPTIONS') {
      res.writeHead(204).end();
      return;
    }
    const current = mode;
    if (current.kind === 'slow') await new Promise((r) => setTimeout(r, current.delayMs));
    if (current.kind === 'flaky') {
      if (attempts.size >= MAX_ATTEMPT_PATHS) attempts.clear();
      const n = (attempts.get(path) ?? 0) + 1;
      attempts.set(path, n);
      if (n <= current.failuresPerObject) {
        record(req, path, current.status, current.kind);
        res.writeHead(current.status, { 'Content-Type': 'text/plain' }).end(`origin ${name} shedding load on purpose\n`);
        return;
      }
    }
    if (current.kind === 'fail') {
      record(req, path, current.status, current.kind);
      res.writeHead(current.status, { 'Content-Type': 'text/plain' }).end(`origin ${name} failing on purpose\n`);
      return;
    }
    const file = normalize(join(root, path));
    const info = file.startsWith(root) ? await stat(file).catch(() => undefined) : undefined;
    if (!info?.isFile()) {
      record(req, path, 404, current.kind);
      res.writeHead(404).end();
      return;
    }
    record(req, path, 200, current.kind);
    res.writeHead(200, { 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream', 'Content-Length': info.size });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    createReadStream(file).pipe(res);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    name,
    baseUrl: `http://127.0.0.1:${port}/`,
    log,
    setMode(m) {
      mode = m;
      attempts.clear();
    },
    segmentRequests(sinceMs = 0) {
      return log.filter((r) => r.atMs >= sinceMs && r.path.endsWith('.m4s') && !r.path.includes('/init-'));
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
