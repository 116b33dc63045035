/**
 * Server-Sent Events fan-out for the live page: one computation per tick, shared by every client.
 * Bounded: at most `maxClients` clients, each with at most `maxBufferedBytes` unsent; a client over
 * that bound is disconnected (its EventSource reconnects) instead of buffering without limit.
 * The timers run only while at least one client is connected.
 *
 * Wire format (https://html.spec.whatwg.org/multipage/server-sent-events.html): `event: snapshot`
 * with one JSON `data:` line, `event: query-error` when the computation fails (the page keeps the
 * last snapshot and says so), and `: hb` comment lines as heartbeats so that proxies keep the
 * connection open and dead peers are noticed.
 */

/** The part of a writable stream (http.ServerResponse) the hub uses. */
export interface SseClient {
  write(chunk: string): boolean;
  readonly writableLength: number;
  end(): void;
}

export interface LiveHubOptions<T> {
  /** Computes the payload of one tick; called at most once at a time. */
  compute(): Promise<T>;
  intervalMs: number;
  heartbeatMs: number;
  maxClients: number;
  maxBufferedBytes: number;
  /** Reported when compute() fails; clients get a `query-error` event. */
  onError?(err: unknown): void;
}

export interface LiveHubStats {
  clients: number;
  ticks: number;
  failedTicks: number;
  /** Clients disconnected for exceeding maxBufferedBytes. */
  droppedSlow: number;
}

export interface LiveHub {
  /** Adds a client and sends it the latest payload; false (and nothing sent) when at the bound. */
  add(client: SseClient): boolean;
  remove(client: SseClient): void;
  /** Computes and broadcasts now; joins the tick in flight if there is one. */
  tick(): Promise<void>;
  stats(): LiveHubStats;
  /** Ends every client and stops the timers. */
  close(): void;
}

export function sseEvent(event: string, data: unknown): string {
  // JSON.stringify never emits a raw newline, so one data line is enough.
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

export function createLiveHub<T>(opts: LiveHubOptions<T>): LiveHub {
  const clients = new Set<SseClient>();
  let latest: string | undefined;
  let inFlight: Promise<void> | undefined;
  let tickTimer: NodeJS.Timeout | undefined;
  let heartbeatTimer: NodeJS.Timeout | undefined;
  const counters = { ticks: 0, failedTicks: 0, droppedSlow: 0 };

  function send(client: SseClient, chunk: string): void {
    client.write(chunk);
    if (client.writableLength > opts.maxBufferedBytes) {
      counters.droppedSlow += 1;
      remove(client);
      client.end();
    }
  }

  function broadcast(chunk: string): void {
    for (const c of [...clients]) send(c, chunk);
  }

  function start(): void {
    tickTimer = setInterval(() => void tick(), opts.intervalMs);
    heartbeatTimer = setInterval(() => broadcast(': hb\n\n'), opts.heartbeatMs);
    tickTimer.unref();
    heartbeatTimer.unref();
  }

  function stop(): void {
    clearInterval(tickTimer);
    clearInterval(heartbeatTimer);
    tickTimer = undefined;
    heartbeatTimer = undefined;
    // Nobody listens: the next client must not get a payload computed long ago.
    latest = undefined;
  }

  async function run(): Promise<void> {
    try {
      const payload = await opts.compute();
      counters.ticks += 1;
      if (clients.size === 0) return;
      latest = sseEvent('snapshot', payload);
      broadcast(latest);
    } catch (err) {
      counters.failedTicks += 1;
      opts.onError?.(err);
      broadcast(sseEvent('query-error', { code: 'QOE_ERR_QUERY_FAILED', message: 'metrics store query failed' }));
    }
  }

  function tick(): Promise<void> {
    inFlight ??= run().finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  }

  function remove(client: SseClient): void {
    if (!clients.delete(client)) return;
    if (clients.size === 0) stop();
  }

  return {
    add(client) {
      if (clients.size >= opts.maxClients) return false;
      clients.add(client);
      client.write(`retry: ${opts.intervalMs}\n\n`);
      if (clients.size === 1) {
        start();
        void tick();
      } else if (latest !== undefined) {
        send(client, latest);
      }
      return true;
    },
    remove,
    tick,
    stats: () => ({ clients: clients.size, ...counters }),
    close() {
      for (const c of [...clients]) {
        clients.delete(c);
        c.end();
      }
      stop();
    },
  };
}
