import { describe, expect, it } from 'vitest';
import type { SteeringDecision } from './decision.js';
import { createDecisionLog, effectiveDecision, isExpired } from './registry.js';

function d(seq: number, country = 'US', asn = '', over: Partial<SteeringDecision> = {}): SteeringDecision {
  return {
    version: 1, id: `d${seq}`, seq, issuedAtMs: 1000 * seq, scope: { country, asn }, priority: ['cdn-b', 'cdn-a'], action: 'demote',
    reason: { metric: 'vsf_rate', cdn: 'cdn-a', value: 0.1, baseline: 0.01, score: 5, windowStartMs: 0, windowMs: 10_000, detail: '' },
    ttlMs: 60_000, ...over,
  };
}

describe('decision log', () => {
  it('keeps the current decision per scope, in seq order', () => {
    const log = createDecisionLog();
    log.append(d(1, 'US'));
    log.append(d(2, 'GB'));
    log.append(d(3, 'US'));
    expect(log.current().map((x) => x.seq)).toEqual([2, 3]);
    expect(log.get({ country: 'US', asn: '' })?.seq).toBe(3);
    expect(log.lastSeq()).toBe(3);
  });

  it('refuses a seq that is not after the last one', () => {
    const log = createDecisionLog();
    log.append(d(5));
    expect(() => log.append(d(5))).toThrow(RangeError);
  });

  it.each([
    { since: 0, want: [1, 2, 3, 4, 5] },
    { since: 3, want: [4, 5] },
    { since: 5, want: [] },
  ])('since($since) answers every later decision', ({ since, want }) => {
    const log = createDecisionLog({ capacity: 10 });
    for (let s = 1; s <= 5; s += 1) log.append(d(s));
    const r = log.since(since);
    expect(r.ok && r.decisions.map((x) => x.seq)).toEqual(want);
  });

  it('the ring keeps the newest `capacity` and says re-snapshot for older seqs', () => {
    const log = createDecisionLog({ capacity: 3 });
    for (let s = 1; s <= 10; s += 1) log.append(d(s, s % 2 === 0 ? 'US' : 'GB'));
    expect(log.size()).toEqual({ scopes: 2, history: 3 });
    expect(log.oldestSeq()).toBe(8);
    const ok = log.since(7);
    expect(ok.ok && ok.decisions.map((x) => x.seq)).toEqual([8, 9, 10]);
    const old = log.since(6);
    expect(old).toMatchObject({ ok: false, reason: 'too_old', oldestSeq: 8, lastSeq: 10 });
    expect(!old.ok && old.message).toMatch(/re-snapshot/);
    expect(log.since(11)).toMatchObject({ ok: false, reason: 'ahead' });
  });

  it('drops the least recently updated scope at the scope bound', () => {
    const log = createDecisionLog({ maxScopes: 2 });
    expect(log.append(d(1, 'US'))).toBeUndefined();
    log.append(d(2, 'GB'));
    log.append(d(3, 'US'));
    expect(log.append(d(4, 'FR'))).toEqual({ country: 'GB', asn: '' });
    expect(log.current().map((x) => x.scope.country)).toEqual(['US', 'FR']);
  });

  it('restore() seeds current and history; since() then resumes across the restart', () => {
    const log = createDecisionLog({ capacity: 5 });
    log.restore([d(2, 'GB'), d(9, 'US')], [d(7, 'FR'), d(8, 'FR'), d(9, 'US')]);
    expect(log.lastSeq()).toBe(9);
    expect(log.current().map((x) => x.seq)).toEqual([2, 9]);
    const r = log.since(7);
    expect(r.ok && r.decisions.map((x) => x.seq)).toEqual([8, 9]);
    expect(log.since(5)).toMatchObject({ ok: false, reason: 'too_old' });
  });
});

describe('effective decision', () => {
  it('prefers the ASN scope, falls back to the country, flags expiry (ttl 0 = never)', () => {
    const log = createDecisionLog();
    log.append(d(1, 'US', '', { issuedAtMs: 0, ttlMs: 1000 }));
    log.append(d(2, 'US', '7922', { issuedAtMs: 0, ttlMs: 5000 }));
    expect(effectiveDecision(log, { country: 'US', asn: '7922' }, 2000)).toMatchObject({ decision: { seq: 2 }, expired: false });
    expect(effectiveDecision(log, { country: 'US', asn: '1' }, 2000)).toMatchObject({ decision: { seq: 1 }, expired: true });
    expect(effectiveDecision(log, { country: 'GB', asn: '' }, 0)).toBeUndefined();
    expect(isExpired(d(3, 'US', '', { issuedAtMs: 0, ttlMs: 0 }), Number.MAX_SAFE_INTEGER)).toBe(false);
  });
});
