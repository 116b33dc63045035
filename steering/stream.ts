/**
 * WS /v1/steering/stream: the live decision feed, on `ws` (noServer) hooked to the fastify server's
 * 'upgrade' event. Auth, filters and `since` are checked BEFORE the upgrade: a bad request gets a
 * plain HTTP answer (401/400/503) on the socket and never becomes a WebSocket.
 *
 * Messages (JSON text frames, `version` = STREAM_MESSAGE_VERSION, documented in docs/steering.md):
 *   {version, type:'snapshot', seq, killSwitch, decisions}   on connect (or after an error)
 *   {version, type:'decision', decision}                     each applied decision, in seq order
 *   {version, type:'error', code, message, requestedSeq, oldestSeq, lastSeq}
 * Bounds: subscribers (maxSubscribers), bytes queued per subscriber (maxBufferedBytes: a slower one is
 * closed with 4008 without holding the others back), incoming frame size (4 KiB); a peer that does not
 * answer a ping within one interval is terminated.
 */
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyPluginAsync } from 'fastify';
import { WebSocketServer, type WebSocket } from 'ws';
import { createAuthorizer, tokenFrom } from './auth.js';
import type { SteeringDecision } from './decision.js';
import { STEERING_ERRORS, steeringErrorBody, type SteeringErrorCode } from './errors.js';
import type { SteeringService } from './service.js';

export const STREAM_PATH = '/v1/steering/stream';
export const STREAM_MESSAGE_VERSION = 1;
/** Close code for a subscriber that fell behind (4000–4999: application codes, RFC 6455 §7.4.2). */
export const CLOSE_SLOW_CONSUMER = 4008;

export interface StreamOptions {
  /** Ping every this many ms; a peer with no pong since the previous ping is terminated. Default 30 000. */
  pingIntervalMs?: number;
  /** Bytes queued for one subscriber beyond which it is cut off. Default 1 MiB. */
  maxBufferedBytes?: number;
  /** Concurrent subscribers; more get 503 before the upgrade. Default 1000. */
  maxSubscribers?: number;
  /** After the close frame, how long a cut-off peer gets before its socket is destroyed (ms). Default 1000. */
  closeGraceMs?: number;
}

export interface StreamFilter {
  countries: ReadonlySet<string> | undefined;
  cdns: ReadonlySet<string> | undefined;
}

export interface StreamStats {
  subscribers: number;
  slowDisconnects: number;
  deadPeers: number;
  rejectedUpgrades: number;
}

export interface SteeringStream {
  plugin: FastifyPluginAsync;
  stats(): StreamStats;
}

function listParam(q: URLSearchParams, name: string, upper: boolean): ReadonlySet<string> | undefined {
  const v = q.get(name);
  if (v === null) return undefined;
  const items = v.split(',').map((s) => (upper ? s.trim().toUpperCase() : s.trim())).filter((s) => s.length > 0);
  return items.length === 0 ? undefined : new Set(items);
}

export function parseFilter(q: URLSearchParams): StreamFilter {
  return { countries: listParam(q, 'countries', true), cdns: listParam(q, 'cdns', false) };
}

/** Kill switch and neutral decisions concern every CDN of the scope, so a CDN filter lets them through. */
export function matchesFilter(f: StreamFilter, d: SteeringDecision): boolean {
  if (f.countries !== undefined && !f.countries.has(d.scope.country)) return false;
  if (f.cdns === undefined || d.action === 'kill_switch' || d.action === 'neutral') return true;
  const cdns = f.cdns;
  return cdns.has(d.reason.cdn) || d.priority.some((c) => cdns.has(c));
}

interface Subscriber {
  ws: WebSocket;
  filter: StreamFilter;
  alive: boolean;
}

function rejectUpgrade(socket: Duplex, code: SteeringErrorCode, message?: string): void {
  const status = STATUS_CODES[STEERING_ERRORS[code].status] === undefined ? 500 : STEERING_ERRORS[code].status;
  const body = JSON.stringify(steeringErrorBody(code, message));
  const headers = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}`,
    'Connection: close',
    'Content-Type: application/json',
    `Content-Length: ${Buffer.byteLength(body)}`,
    ...(status === 401 ? ['WWW-Authenticate: Bearer realm="qoe-steering"'] : []),
  ];
  socket.once('finish', () => socket.destroy());
  socket.end(`${headers.join('\r\n')}\r\n\r\n${body}`);
}

export function createSteeringStream(service: SteeringService, opts: StreamOptions = {}): SteeringStream {
  const pingIntervalMs = opts.pingIntervalMs ?? 30_000;
  const maxBufferedBytes = opts.maxBufferedBytes ?? 1024 * 1024;
  const maxSubscribers = opts.maxSubscribers ?? 1000;
  const closeGraceMs = opts.closeGraceMs ?? 1000;
  const auth = createAuthorizer(service.config);
  const subscribers = new Set<Subscriber>();
  const counters = { slowDisconnects: 0, deadPeers: 0, rejectedUpgrades: 0 };

  function drop(s: Subscriber): void {
    subscribers.delete(s);
  }

  /** Sends and enforces the buffer bound; false once the subscriber is gone. */
  function send(s: Subscriber, text: string): boolean {
    if (!subscribers.has(s)) return false;
    s.ws.send(text);
    const buffered = s.ws.bufferedAmount;
    if (buffered <= maxBufferedBytes) return true;
    counters.slowDisconnects += 1;
    drop(s);
    s.ws.close(CLOSE_SLOW_CONSUMER, `slow consumer: ${buffered} bytes queued > ${maxBufferedBytes}; resume with since`);
    setTimeout(() => s.ws.terminate(), closeGraceMs).unref();
    return false;
  }

  function snapshot(s: Subscriber): boolean {
    const decisions = service.current().filter((d) => matchesFilter(s.filter, d));
    return send(s, JSON.stringify({ version: STREAM_MESSAGE_VERSION, type: 'snapshot', seq: service.lastSeq(), killSwitch: service.killSwitch().enabled, decisions }));
  }

  function onConnection(ws: WebSocket, filter: StreamFilter, since: number | undefined): void {
    const s: Subscriber = { ws, filter, alive: true };
    // Registered before the backlog is written, in the same tick: nothing applied in between is missed.
    subscribers.add(s);
    ws.on('pong', () => {
      s.alive = true;
    });
    ws.on('close', () => drop(s));
    ws.on('error', () => drop(s));
    if (since === undefined) {
      snapshot(s);
      return;
    }
    const r = service.since(since);
    if (r.ok) {
      for (const d of r.decisions) {
        if (matchesFilter(filter, d) && !send(s, JSON.stringify({ version: STREAM_MESSAGE_VERSION, type: 'decision', decision: d }))) return;
      }
      return;
    }
    const err = { version: STREAM_MESSAGE_VERSION, type: 'error', code: 'QOE_ERR_STEERING_SEQ_UNAVAILABLE', message: r.message, reason: r.reason, requestedSeq: r.requestedSeq, oldestSeq: r.oldestSeq, lastSeq: r.lastSeq };
    if (send(s, JSON.stringify(err))) snapshot(s);
  }

  function heartbeat(): void {
    for (const s of subscribers) {
      if (!s.alive) {
        counters.deadPeers += 1;
        drop(s);
        s.ws.terminate();
        continue;
      }
      s.alive = false;
      s.ws.ping();
    }
  }

  async function plugin(app: Parameters<FastifyPluginAsync>[0]): Promise<void> {
    const wss = new WebSocketServer({ noServer: true, maxPayload: 4096, perMessageDeflate: false, clientTracking: false });
    const log = app.log.child({ component: 'steering-stream' });

    function onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
      const url = new URL(req.url ?? '/', 'http://localhost');
      if (url.pathname !== STREAM_PATH) {
        // Another 'upgrade' listener may own this path; if we are the only one, say 404.
        if (app.server.listenerCount('upgrade') === 1) rejectUpgradeNotFound(socket);
        return;
      }
      const q = url.searchParams;
      const reject = (code: SteeringErrorCode, message?: string): void => {
        counters.rejectedUpgrades += 1;
        rejectUpgrade(socket, code, message);
      };
      if (auth.level(tokenFrom(req.headers, q)) === 'none') return reject('QOE_ERR_STEERING_UNAUTHORIZED');
      const sinceRaw = q.get('since');
      const since = sinceRaw === null ? undefined : Number(sinceRaw);
      if (since !== undefined && (!Number.isSafeInteger(since) || since < 0)) return reject('QOE_ERR_STEERING_BAD_REQUEST', 'since must be a non-negative integer seq');
      if (subscribers.size >= maxSubscribers) return reject('QOE_ERR_STEERING_TOO_MANY_SUBSCRIBERS');
      const filter = parseFilter(q);
      wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, filter, since));
    }

    app.server.on('upgrade', onUpgrade);
    const unsubscribe = service.subscribe(function pushDecision(d) {
      let text: string | undefined;
      for (const s of subscribers) {
        if (!matchesFilter(s.filter, d)) continue;
        text ??= JSON.stringify({ version: STREAM_MESSAGE_VERSION, type: 'decision', decision: d });
        send(s, text);
      }
    });
    const timer = setInterval(heartbeat, pingIntervalMs);
    timer.unref();

    app.addHook('preClose', async function closeSteeringStream() {
      clearInterval(timer);
      unsubscribe();
      app.server.off('upgrade', onUpgrade);
      for (const s of subscribers) s.ws.terminate();
      subscribers.clear();
      wss.close();
      log.debug('steering stream closed');
    });
  }

  return {
    plugin,
    stats: () => ({ subscribers: subscribers.size, ...counters }),
  };
}

function rejectUpgradeNotFound(socket: Duplex): void {
  const body = JSON.stringify({ error: { code: 'QOE_ERR_NOT_FOUND', message: 'not found' } });
  socket.once('finish', () => socket.destroy());
  socket.end(`HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
}
