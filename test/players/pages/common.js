// Shared by hls.html and dash.html. The test reads window.__qoe (see test/players/browser.ts).
// Plain browser JavaScript: served as is, not compiled.

/** The page configuration, JSON in the `cfg` query parameter (test/players/site.ts PageConfig). */
export function readConfig() {
  return JSON.parse(new URLSearchParams(location.search).get('cfg') ?? '{}');
}

/**
 * State the test polls, and the CMCD event-target POST the players use. Neither player puts a `cdn`
 * key in its event reports, so the page adds one per record, as a player integration would: the CDN
 * of the `url` of an `e=rr` record, else the CDN of the last response received (the one in use).
 * The country is not the page's business: an edge in front of the collector adds it (site.ts).
 */
export function createState(cfg, video) {
  let lastCdn = cfg.initialCdn;
  const inflight = new Set();
  const state = {
    errors: [],
    steering: [],
    reports: { posts: 0, records: 0, failed: 0, statuses: {}, events: {}, droppedTtfb: 0 },
    playingAtMs: undefined,
    stoppedAtMs: undefined,
    currentTime: () => video.currentTime,
    playing: () => !video.paused && video.readyState >= 3 && video.currentTime > 0,
    height: () => video.videoHeight,
    stop: async () => undefined,
  };
  video.addEventListener('playing', () => { state.playingAtMs ??= Date.now(); });
  video.addEventListener('error', () => state.errors.push(`video error ${video.error?.code} ${video.error?.message}`));

  function tag(body) {
    return body.split('\n').map((line) => {
      if (line.trim() === '') return line;
      state.reports.records++;
      const ev = /(?:^|,)e=([a-z]+)/.exec(line)?.[1] ?? '?';
      state.reports.events[ev] = (state.reports.events[ev] ?? 0) + 1;
      const url = /(?:^|,)url="([^"]*)"/.exec(line)?.[1];
      if (url !== undefined) {
        try {
          const cdn = cfg.cdnByHost[new URL(url, location.href).host];
          if (cdn) lastCdn = cdn;
        } catch { /* a relative or odd url: keep the last CDN */ }
      }
      if (cfg.dropAbsoluteTtfb) {
        // dash.js 5.2.1 puts the response-start timestamp (epoch ms) in `ttfb`, not a duration; qoe-stream's
        // ingest answered 500 to such records (an int overflow), which this removes from the test's way.
        const ttfb = Number(/(?:^|,)ttfb=(\d+)/.exec(line)?.[1]);
        if (ttfb > 86_400_000) {
          state.reports.droppedTtfb++;
          line = line.replace(/(^|,)ttfb=\d+(?=,|$)/, '').replace(/^,/, '');
        }
      }
      return /(?:^|,)cdn=/.test(line) || !lastCdn ? line : `${line},cdn="${lastCdn}"`;
    }).join('\n');
  }

  function count(status) {
    state.reports.posts++;
    state.reports.statuses[status] = (state.reports.statuses[status] ?? 0) + 1;
    if (status < 200 || status >= 300) state.reports.failed++;
  }

  /** hls.js `cmcd.loader`: sends one event-target report. */
  function send(request) {
    const body = typeof request.body === 'string' ? tag(request.body) : request.body;
    const p = fetch(request.url, {
      method: request.method ?? 'POST',
      headers: request.headers ?? {},
      body,
      keepalive: true,
    }).then((res) => { count(res.status); return { status: res.status }; },
      () => { count(0); return { status: 0 }; });
    inflight.add(p);
    p.finally(() => inflight.delete(p));
    return p;
  }

  /** dash.js request interceptor: the same rewrite on its CMCD report requests (XHR). */
  function intercept(request) {
    if (request.url.startsWith(cfg.collector) && typeof request.body === 'string') {
      request.body = tag(request.body);
      state.reports.posts++;
    }
    return Promise.resolve(request);
  }

  async function flush() {
    await Promise.allSettled([...inflight]);
  }

  return { state, send, intercept, flush };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
