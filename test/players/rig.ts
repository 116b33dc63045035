/**
 * Everything a player test needs around qoe-stream: the media, two origins (pathways A and B), the
 * page server with manifests pointing at them and at the steering endpoints, Chromium. Cleanup is
 * registered on afterAll by the caller through `close()`.
 */
import { randomUUID } from 'node:crypto';
import type { Browser } from 'playwright-core';
import { launchChromium, openPlayer, type PlayerPage } from './browser.js';
import { DEFAULT_MEDIA, ensureMedia, type Media, type MediaSpec } from './media.js';
import { startOrigin, type Origin } from './origins.js';
import { startSite, type PageConfig, type Site } from './site.js';

export type PlayerKind = 'hls' | 'dash';

/** CDN names in the CMCD records, and the pathway ids the manifests use for them. */
export const CDN_A = 'cdn-a';
export const CDN_B = 'cdn-b';
export const PATHWAYS = { [CDN_A]: 'A', [CDN_B]: 'B' } as const;
export const COUNTRY = 'US';

export interface OpenOptions {
  intervalS?: number;
  /** Pathway the manifest names first ('A' by default). */
  firstPathway?: string;
  /** The manifest names this pathway alone, without content steering: the player never moves. */
  onlyPathway?: string;
  /** Report through the page server's edge proxy, which adds the country header (see site.ts). */
  viaEdge?: boolean;
  maxBufferS?: number;
}

export interface Rig {
  media: Media;
  a: Origin;
  b: Origin;
  site: Site;
  browser: Browser;
  open(player: PlayerKind, opts?: OpenOptions): Promise<{ page: PlayerPage; sid: string; cid: string }>;
  close(): Promise<void>;
}

/** The header a CDN edge puts the viewer's country in; also the steering service's default scope header. */
export const COUNTRY_HEADER = 'x-country';

export async function startRig(qoeUrl: string, spec: MediaSpec = DEFAULT_MEDIA): Promise<Rig> {
  const media = await ensureMedia(spec);
  const [a, b] = await Promise.all([startOrigin(CDN_A, media.dir), startOrigin(CDN_B, media.dir)]);
  const pathways = [{ id: PATHWAYS[CDN_A], baseUrl: a.baseUrl }, { id: PATHWAYS[CDN_B], baseUrl: b.baseUrl }];
  // The scope of a steering request is its country (?country= here; an edge header in production).
  const site = await startSite({
    media, pathways,
    edge: { collectorUrl: `${qoeUrl}/v1/cmcd`, headers: { [COUNTRY_HEADER]: COUNTRY } },
    steering: { hls: `${qoeUrl}/v1/steering/hls?country=${COUNTRY}`, dash: `${qoeUrl}/v1/steering/dash?country=${COUNTRY}` },
  });
  const browser = await launchChromium();
  const pages: PlayerPage[] = [];
  return {
    media, a, b, site, browser,
    async open(player, opts = {}) {
      const sid = randomUUID();
      const cid = `${player}-${sid.slice(0, 8)}`;
      const cfg: PageConfig = {
        src: `${player === 'hls' ? site.hlsUrl : site.dashUrl}${
          opts.onlyPathway !== undefined ? `?only=${opts.onlyPathway}` : opts.firstPathway === undefined ? '' : `?first=${opts.firstPathway}`}`,
        collector: opts.viaEdge === true ? site.edgeCollectorUrl : `${qoeUrl}/v1/cmcd`,
        sid, cid,
        intervalS: opts.intervalS ?? 2,
        cdnByHost: { [new URL(a.baseUrl).host]: CDN_A, [new URL(b.baseUrl).host]: CDN_B },
        initialCdn: (opts.onlyPathway ?? opts.firstPathway) === PATHWAYS[CDN_B] ? CDN_B : CDN_A,
        ...(opts.maxBufferS === undefined ? {} : { maxBufferS: opts.maxBufferS }),
        dropAbsoluteTtfb: player === 'dash',
      };
      const page = await openPlayer(browser, site.pageUrl(player, cfg));
      pages.push(page);
      return { page, sid, cid };
    },
    async close() {
      await Promise.allSettled(pages.map((p) => p.page.close()));
      await browser.close().catch(() => undefined);
      await Promise.allSettled([site.close(), a.close(), b.close()]);
    },
  };
}
