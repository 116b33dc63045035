/**
 * Content-steering manifests (pure). HLS (RFC 8216bis, EXT-X-CONTENT-STEERING) and DASH (DASH-IF /
 * ETSI TS 103 998) steering servers answer the same JSON:
 *   {"VERSION":1,"TTL":<s>,"RELOAD-URI":"…","PATHWAY-PRIORITY":[…]}
 * DASH players older than the ETSI spec read "SERVICE-LOCATION-PRIORITY": both are sent.
 * Players append `_HLS_pathway`/`_HLS_throughput` (HLS) or `_DASH_pathway`/`_DASH_throughput` (DASH,
 * dash.js sends comma lists of quoted values) to every steering request.
 */
import type { SteeringConfig } from './config.js';
import type { SteeringDecision, SteeringScope } from './decision.js';

export type ManifestKind = 'hls' | 'dash';

export interface SteeringManifest {
  VERSION: 1;
  TTL: number;
  'RELOAD-URI': string;
  'PATHWAY-PRIORITY': string[];
  'SERVICE-LOCATION-PRIORITY'?: string[];
}

export type QueryValue = string | string[] | undefined;

/** `"cdn-a"` → ['cdn-a']; `"a","b"` or `a,b` → ['a', 'b']; repeated parameters are concatenated. */
export function parseListParam(v: QueryValue): string[] {
  const parts = (Array.isArray(v) ? v : v === undefined ? [] : [v]).flatMap((s) => s.split(','));
  return parts.map((s) => s.trim().replace(/^"+|"+$/g, '').trim()).filter((s) => s.length > 0);
}

/** The pathway the player is on now: the first of `_HLS_pathway` / `_DASH_pathway`. */
export function currentPathway(kind: ManifestKind, query: Record<string, QueryValue>): string | undefined {
  return parseListParam(query[kind === 'hls' ? '_HLS_pathway' : '_DASH_pathway'])[0];
}

/** Bits per second the player reports (the first positive number of the list), if any. */
export function reportedThroughputBps(kind: ManifestKind, query: Record<string, QueryValue>): number | undefined {
  const n = parseListParam(query[kind === 'hls' ? '_HLS_throughput' : '_DASH_throughput']).map(Number).find((x) => Number.isFinite(x) && x > 0);
  return n;
}

/**
 * The client's scope: the country from the edge header (trusted, set by the CDN), else `?country=`;
 * the ASN from `?asn=` (digits, an `AS` prefix is accepted). Undefined when no valid country is known.
 */
export function resolveScope(headerValue: string | string[] | undefined, query: Record<string, QueryValue>): SteeringScope | undefined {
  const first = (v: QueryValue): string => (Array.isArray(v) ? (v[0] ?? '') : (v ?? '')).trim().toUpperCase();
  const fromHeader = first(headerValue);
  const country = /^[A-Z]{2}$/.test(fromHeader) ? fromHeader : first(query.country);
  if (!/^[A-Z]{2}$/.test(country)) return undefined;
  const asn = first(query.asn).replace(/^AS/, '');
  return { country, asn: /^[0-9]{1,10}$/.test(asn) ? asn : '' };
}

/** Pathway ids for CDN names: the configured map (CDNs without an id are left out), or the names themselves. */
export function toPathways(cdns: readonly string[], pathways: Readonly<Record<string, string>>): string[] {
  const mapped = Object.keys(pathways).length === 0 ? [...cdns] : cdns.flatMap((c) => (pathways[c] === undefined ? [] : [pathways[c]]));
  return [...new Set(mapped)];
}

export interface ManifestInput {
  kind: ManifestKind;
  /** What service.lookup(scope) answered (undefined: no decision for the scope, or no scope). */
  effective: { decision: SteeringDecision; expired: boolean } | undefined;
  config: Pick<SteeringConfig, 'neutralPriority' | 'pathways' | 'ttlSeconds'>;
  /** The pathway the player reports being on. */
  current: string | undefined;
  /** Relative reference back to this endpoint with the client's query string. */
  reloadUri: string;
}

/**
 * The pathway order for a client:
 * - a live decision for its scope: the decision's priority (kill switch and TTL reverts carry the neutral one);
 * - an expired decision: the neutral priority;
 * - no decision: the neutral priority, but the player's current pathway first: nothing says it is
 *   unhealthy, and moving it would only cost a switch.
 */
export function pathwayPriority(input: Omit<ManifestInput, 'kind' | 'reloadUri'>): string[] {
  const { effective, config, current } = input;
  if (effective !== undefined && !effective.expired) return toPathways(effective.decision.priority, config.pathways);
  const neutral = toPathways(config.neutralPriority, config.pathways);
  if (effective !== undefined || current === undefined) return neutral;
  const known = neutral.length === 0 || neutral.includes(current);
  return known ? [current, ...neutral.filter((p) => p !== current)] : neutral;
}

export function steeringManifest(input: ManifestInput): SteeringManifest {
  const priority = pathwayPriority(input);
  const manifest: SteeringManifest = { VERSION: 1, TTL: input.config.ttlSeconds, 'RELOAD-URI': input.reloadUri, 'PATHWAY-PRIORITY': priority };
  if (input.kind === 'dash') manifest['SERVICE-LOCATION-PRIORITY'] = [...priority];
  return manifest;
}

/** `hls?<query>`: relative to the manifest URL, so it survives path prefixes added by proxies. */
export function reloadUri(kind: ManifestKind, rawUrl: string): string {
  const q = rawUrl.indexOf('?');
  return q < 0 ? kind : `${kind}${rawUrl.slice(q)}`;
}
