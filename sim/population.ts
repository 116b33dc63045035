/**
 * Who watches: the catalogue of CDNs, countries, networks, devices/players and content the simulator
 * draws each view's dimensions from. Pure data plus one draw function.
 */
import { emptyDims, type Dims, type StreamType } from '../schemas/events.js';
import { hash32, pick, weighted, type Rng } from './prng.js';

export const CDNS = ['cdn-a', 'cdn-b', 'cdn-c'] as const;

const CDN_WEIGHTS: readonly (readonly [string, number])[] = [
  ['cdn-a', 0.45],
  ['cdn-b', 0.35],
  ['cdn-c', 0.2],
];

/** Country → share of views and the ASNs its viewers come from. */
const COUNTRIES: readonly { country: string; weight: number; asns: readonly number[] }[] = [
  { country: 'US', weight: 0.3, asns: [7922, 7018, 701, 20115] },
  { country: 'GB', weight: 0.1, asns: [2856, 5089] },
  { country: 'DE', weight: 0.1, asns: [3320, 3209] },
  { country: 'FR', weight: 0.08, asns: [3215, 12322] },
  { country: 'BR', weight: 0.12, asns: [28573, 18881] },
  { country: 'IN', weight: 0.15, asns: [55836, 9829] },
  { country: 'JP', weight: 0.05, asns: [2516, 4713] },
  { country: 'CA', weight: 0.05, asns: [812, 577] },
  { country: 'ES', weight: 0.05, asns: [3352, 12479] },
];

export const COUNTRY_CODES: readonly string[] = COUNTRIES.map((c) => c.country);

export type DeviceClass = 'desktop' | 'mobile' | 'tablet' | 'tv';

interface DeviceCombo {
  deviceType: DeviceClass;
  os: string;
  browser: string;
  playerName: string;
  playerVersion: string;
  weight: number;
}

const DEVICES: readonly DeviceCombo[] = [
  { deviceType: 'desktop', os: 'Windows', browser: 'Chrome', playerName: 'hls.js', playerVersion: '1.7.1', weight: 0.2 },
  { deviceType: 'desktop', os: 'Windows', browser: 'Edge', playerName: 'hls.js', playerVersion: '1.7.1', weight: 0.06 },
  { deviceType: 'desktop', os: 'macOS', browser: 'Safari', playerName: 'avplayer', playerVersion: '17.4', weight: 0.07 },
  { deviceType: 'desktop', os: 'macOS', browser: 'Chrome', playerName: 'dash.js', playerVersion: '5.2.0', weight: 0.06 },
  { deviceType: 'desktop', os: 'Linux', browser: 'Firefox', playerName: 'shaka', playerVersion: '5.2.0', weight: 0.03 },
  { deviceType: 'mobile', os: 'iOS', browser: 'Safari', playerName: 'avplayer', playerVersion: '17.4', weight: 0.18 },
  { deviceType: 'mobile', os: 'Android', browser: 'Chrome', playerName: 'exoplayer', playerVersion: '2.19.1', weight: 0.2 },
  { deviceType: 'tablet', os: 'iPadOS', browser: 'Safari', playerName: 'avplayer', playerVersion: '17.4', weight: 0.05 },
  { deviceType: 'tv', os: 'Tizen', browser: 'app', playerName: 'shaka', playerVersion: '4.6.0', weight: 0.06 },
  { deviceType: 'tv', os: 'webOS', browser: 'app', playerName: 'dash.js', playerVersion: '4.7.4', weight: 0.04 },
  { deviceType: 'tv', os: 'Android TV', browser: 'app', playerName: 'exoplayer', playerVersion: '2.19.1', weight: 0.05 },
];

/** Bitrate ladders (kbit/s) by device class: small screens never get the top rungs. */
export const LADDERS: Readonly<Record<DeviceClass, readonly number[]>> = {
  mobile: [400, 800, 1600, 3000],
  tablet: [400, 800, 1600, 3000, 4500],
  desktop: [400, 800, 1600, 3000, 4500, 6000],
  tv: [800, 1600, 3000, 4500, 6000],
};

const VOD_TITLES = 40;
const LIVE_CHANNELS = 4;

export interface Content {
  contentId: string;
  streamType: StreamType;
  /** Length of a VOD title; live has no end the viewer can reach. */
  durationMs: number | null;
}

/** A VOD title's duration is a function of its id, so every view of it agrees. */
export function contentFor(rng: Rng, liveShare: number): Content {
  if (rng() < liveShare) {
    const n = 1 + Math.floor(rng() * LIVE_CHANNELS);
    return { contentId: `live-${String(n).padStart(2, '0')}`, streamType: 'live', durationMs: null };
  }
  // Zipf-ish popularity: low ids are watched more.
  const n = 1 + Math.floor(VOD_TITLES * rng() * rng());
  const contentId = `vod-${String(n).padStart(4, '0')}`;
  const minutes = 2 + (hash32(contentId) % 58); // 2..59 min
  return { contentId, streamType: 'vod', durationMs: minutes * 60_000 };
}

export interface Viewer {
  dims: Dims;
  device: DeviceClass;
  content: Content;
  /** 0..1 quality of the viewer's network: sets the starting rung and the up-switch tendency. */
  network: number;
}

export function drawViewer(rng: Rng, liveShare: number): Viewer {
  const cdn = weighted(rng, CDN_WEIGHTS);
  const place = weighted(
    rng,
    COUNTRIES.map((c) => [c, c.weight] as const),
  );
  const asn = pick(rng, place.asns);
  const device = weighted(
    rng,
    DEVICES.map((d) => [d, d.weight] as const),
  );
  const content = contentFor(rng, liveShare);
  const dims: Dims = {
    ...emptyDims(),
    cdn,
    country: place.country,
    asn: String(asn),
    contentId: content.contentId,
    streamType: content.streamType,
    playerName: device.playerName,
    playerVersion: device.playerVersion,
    deviceType: device.deviceType,
    os: device.os,
    browser: device.browser,
    custom1: rng() < 0.3 ? 'premium' : 'free',
    custom2: rng() < 0.5 ? 'abr-a' : 'abr-b',
    // custom3 stays '' (not sent): exercises the "unknown" value.
  };
  return { dims, device: device.deviceType, content, network: rng() };
}
