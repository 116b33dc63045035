import { describe, expect, it } from 'vitest';
import { parseSteeringEnv } from './config.js';

describe('steering config', () => {
  it('applies the documented defaults', () => {
    expect(parseSteeringEnv({})).toEqual({
      killSwitch: false, neutralPriority: [], pathways: {}, tokens: [], adminTokens: [], scopeHeader: 'x-country', ttlSeconds: 60,
    });
  });

  it('parses every variable', () => {
    const c = parseSteeringEnv({
      QOE_STEERING_TOKENS: 'aaaaaaaaaaaaaaaa1, aaaaaaaaaaaaaaaa2',
      QOE_STEERING_ADMIN_TOKENS: 'bbbbbbbbbbbbbbbb',
      QOE_STEERING_KILL_SWITCH: 'true',
      QOE_STEERING_NEUTRAL: 'cdn-a,cdn-b',
      QOE_STEERING_PATHWAYS: 'cdn-a=A,cdn-b=B',
      QOE_STEERING_SCOPE_HEADER: 'CF-IPCountry',
      QOE_STEERING_TTL_S: '120',
    });
    expect(c).toEqual({
      killSwitch: true, neutralPriority: ['cdn-a', 'cdn-b'], pathways: { 'cdn-a': 'A', 'cdn-b': 'B' },
      tokens: ['aaaaaaaaaaaaaaaa1', 'aaaaaaaaaaaaaaaa2'], adminTokens: ['bbbbbbbbbbbbbbbb'], scopeHeader: 'cf-ipcountry', ttlSeconds: 120,
    });
    expect(Object.isFrozen(c)).toBe(true);
  });

  it.each([
    { QOE_STEERING_KILL_SWITCH: 'maybe' },
    { QOE_STEERING_TTL_S: '0' },
    { QOE_STEERING_PATHWAYS: 'cdn-a' },
    { QOE_STEERING_PATHWAYS: 'cdn-a=A B' },
    { QOE_STEERING_TOKENS: 'short' },
    { QOE_STEERING_SCOPE_HEADER: 'x country' },
  ])('fails fast on %j', (env) => {
    expect(() => parseSteeringEnv(env)).toThrow(/QOE_STEERING|tokens/);
  });
});
