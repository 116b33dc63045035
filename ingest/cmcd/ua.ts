/**
 * Pure: coarse dimensions from a User-Agent string, for formats that carry none (CMCD has no
 * browser/os/device keys). Deliberately coarse — a handful of families, '' when unsure — so that
 * the dimension stays low-cardinality; players that know better send native beacons.
 */
import type { Dims } from '../../schemas/events.js';

export type UaDims = Pick<Dims, 'browser' | 'os' | 'deviceType'>;

// Order matters: the first match wins (Edge and Opera UAs also contain "Chrome", Chrome's "Safari").
const BROWSERS: ReadonlyArray<[RegExp, string]> = [
  [/\bEdg(e|A|iOS)?\//, 'Edge'],
  [/\b(OPR|Opera)\//, 'Opera'],
  [/\bSamsungBrowser\//, 'Samsung Internet'],
  [/\b(Firefox|FxiOS)\//, 'Firefox'],
  [/\b(Chrome|CriOS|Chromium)\//, 'Chrome'],
  [/\bVersion\/[\d.]+.*\bSafari\//, 'Safari'],
];

const OSES: ReadonlyArray<[RegExp, string]> = [
  [/\b(Tizen)\b/, 'Tizen'],
  [/\b(Web0S|webOS)\b/, 'webOS'],
  [/\bRoku\b/, 'Roku'],
  [/\b(AppleTV|tvOS)\b/, 'tvOS'],
  [/\bCrOS\b/, 'ChromeOS'],
  [/\bAndroid\b/, 'Android'],
  [/\b(iPhone|iPad|iPod)\b/, 'iOS'],
  [/\bWindows\b/, 'Windows'],
  [/\bMac OS X\b|\bMacintosh\b/, 'macOS'],
  [/\bLinux\b/, 'Linux'],
];

function firstMatch(table: ReadonlyArray<[RegExp, string]>, ua: string): string {
  for (const [re, name] of table) if (re.test(ua)) return name;
  return '';
}

function deviceType(ua: string, os: string): string {
  if (/\b(SmartTV|SMART-TV|Smart TV|HbbTV|BRAVIA|AFT[A-Z]|CrKey)\b/.test(ua) || ['Tizen', 'webOS', 'Roku', 'tvOS'].includes(os)) return 'tv';
  if (/\b(PlayStation|Xbox|Nintendo)\b/.test(ua)) return 'console';
  if (/\biPad\b/.test(ua) || (os === 'Android' && !/\bMobile\b/.test(ua))) return 'tablet';
  if (/\b(iPhone|iPod|Mobile)\b/.test(ua)) return 'mobile';
  if (os === 'Windows' || os === 'macOS' || os === 'Linux' || os === 'ChromeOS') return 'desktop';
  return '';
}

export function dimsFromUserAgent(ua: string | undefined): UaDims {
  if (ua === undefined || ua === '') return { browser: '', os: '', deviceType: '' };
  const os = firstMatch(OSES, ua);
  return { browser: firstMatch(BROWSERS, ua), os, deviceType: deviceType(ua, os) };
}

/**
 * Country from a header set by the edge (e.g. CloudFront-Viewer-Country, CF-IPCountry): an ISO
 * 3166-1 alpha-2 code, upper-cased; anything else (Cloudflare's XX unknown and T1 Tor included) is ''.
 */
export function countryFromHeader(value: string | string[] | undefined): string {
  const v = (Array.isArray(value) ? value[0] : value)?.trim().toUpperCase() ?? '';
  return /^[A-Z]{2}$/.test(v) && v !== 'XX' ? v : '';
}
