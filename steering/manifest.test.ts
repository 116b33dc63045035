import { describe, expect, it } from 'vitest';
import type { SteeringDecision } from './decision.js';
import { currentPathway, parseListParam, pathwayPriority, reloadUri, reportedThroughputBps, resolveScope, steeringManifest, toPathways } from './manifest.js';

const config = { neutralPriority: ['cdn-a', 'cdn-b', 'cdn-c'], pathways: { 'cdn-a': 'A', 'cdn-b': 'B', 'cdn-c': 'C' }, ttlSeconds: 30 };
const decision = { priority: ['cdn-b', 'cdn-c', 'cdn-a'] } as SteeringDecision;

describe('content-steering query parameters', () => {
  it.each([
    [undefined, []],
    ['"A"', ['A']],
    ['A', ['A']],
    ['"A","B"', ['A', 'B']],
    [['"A"', 'B'], ['A', 'B']],
  ] as const)('parseListParam(%j) = %j', (v, want) => {
    expect(parseListParam(v as string | string[] | undefined)).toEqual(want);
  });

  it('reads the current pathway and throughput of HLS and DASH players', () => {
    expect(currentPathway('hls', { _HLS_pathway: '"B"' })).toBe('B');
    expect(currentPathway('dash', { _DASH_pathway: '"C","A"' })).toBe('C');
    expect(reportedThroughputBps('dash', { _DASH_throughput: '0,5400000' })).toBe(5_400_000);
    expect(reportedThroughputBps('hls', {})).toBeUndefined();
  });

  it('resolves the scope from the edge header first, then the query', () => {
    expect(resolveScope('gb', { country: 'US' })).toEqual({ country: 'GB', asn: '' });
    expect(resolveScope(undefined, { country: 'us', asn: 'AS7922' })).toEqual({ country: 'US', asn: '7922' });
    expect(resolveScope('bogus', { country: 'x' })).toBeUndefined();
  });

  it('keeps the query string in a relative RELOAD-URI', () => {
    expect(reloadUri('hls', '/v1/steering/hls?country=US&_HLS_pathway=%22A%22')).toBe('hls?country=US&_HLS_pathway=%22A%22');
    expect(reloadUri('dash', '/v1/steering/dash')).toBe('dash');
  });
});

describe('pathway priority', () => {
  it('maps CDN names to pathway ids, dropping unmapped ones; identity without a map', () => {
    expect(toPathways(['cdn-b', 'cdn-x', 'cdn-a'], config.pathways)).toEqual(['B', 'A']);
    expect(toPathways(['cdn-b', 'cdn-a'], {})).toEqual(['cdn-b', 'cdn-a']);
  });

  it.each([
    { name: 'live decision', effective: { decision, expired: false }, current: 'A', want: ['B', 'C', 'A'] },
    { name: 'expired decision → neutral', effective: { decision, expired: true }, current: 'B', want: ['A', 'B', 'C'] },
    { name: 'no decision keeps a healthy client where it is', effective: undefined, current: 'C', want: ['C', 'A', 'B'] },
    { name: 'no decision, unknown pathway → neutral', effective: undefined, current: 'Z', want: ['A', 'B', 'C'] },
    { name: 'no decision, no pathway → neutral', effective: undefined, current: undefined, want: ['A', 'B', 'C'] },
  ])('$name', ({ effective, current, want }) => {
    expect(pathwayPriority({ effective, config, current })).toEqual(want);
  });

  it('DASH manifests carry SERVICE-LOCATION-PRIORITY too', () => {
    const m = steeringManifest({ kind: 'dash', effective: undefined, config, current: undefined, reloadUri: 'dash?x=1' });
    expect(m).toEqual({ VERSION: 1, TTL: 30, 'RELOAD-URI': 'dash?x=1', 'PATHWAY-PRIORITY': ['A', 'B', 'C'], 'SERVICE-LOCATION-PRIORITY': ['A', 'B', 'C'] });
    expect(steeringManifest({ kind: 'hls', effective: undefined, config, current: undefined, reloadUri: 'hls' })).not.toHaveProperty('SERVICE-LOCATION-PRIORITY');
  });
});
