import { describe, expect, it } from 'vitest';
import { createMemoryBus } from '../lib/bus/memory.js';
import { TOPICS } from '../lib/bus/topics.js';
import { QoeError } from '../lib/errors.js';
import { silentLogger } from '../lib/logger.js';
import type { Store } from '../lib/store/types.js';
import { decodeDecision } from './codec.js';
import type { SteeringDecision } from './decision.js';
import { createSteeringService } from './service.js';
import { demote, testConfig, waitFor } from './testing.js';

describe('steering service', () => {
  it('sequences decisions densely (the detector seq is replaced), normalises the country, rejects invalid ones', async () => {
    const service = createSteeringService({ log: silentLogger(), now: () => 5000, config: testConfig(), expirySweepMs: 0 });
    await service.start();
    const a = service.submit({ ...demote('us', 'cdn-a', ['cdn-b']), seq: 999, id: 'det-1' });
    expect(a).toMatchObject({ outcome: 'applied', decision: { seq: 1, id: 'det-1', issuedAtMs: 5000, version: 1, scope: { country: 'US' } } });
    const bad = service.submit(demote('USA', 'cdn-a', ['cdn-b']));
    expect(bad).toMatchObject({ outcome: 'rejected' });
    expect(service.submit(demote('GB', 'cdn-a', ['cdn-b']))).toMatchObject({ outcome: 'applied', decision: { seq: 2 } });
    expect(service.stats()).toMatchObject({ applied: 2, rejected: 1, lastSeq: 2 });
  });

  it('reverts an expired decision to neutral with a new decision subscribers see; neutral ones never expire', async () => {
    let clock = 0;
    const service = createSteeringService({ log: silentLogger(), now: () => clock, config: testConfig(), expirySweepMs: 0 });
    await service.start();
    const seen: SteeringDecision[] = [];
    service.subscribe((d) => seen.push(d));
    service.submit(demote('US', 'cdn-a', ['cdn-b'], { ttlMs: 1000 }));
    service.submit(demote('GB', 'cdn-a', ['cdn-b'], { ttlMs: 5000 }));
    clock = 999;
    expect(service.expireNow()).toEqual([]);
    expect(service.lookup({ country: 'US', asn: '' })?.expired).toBe(false);
    clock = 1000;
    expect(service.lookup({ country: 'US', asn: '' })?.expired).toBe(true);
    const reverted = service.expireNow();
    expect(reverted).toMatchObject([{ seq: 3, action: 'neutral', scope: { country: 'US' }, priority: ['cdn-a', 'cdn-b'], ttlMs: 0, reason: { metric: 'operator' } }]);
    expect(seen.map((d) => d.seq)).toEqual([1, 2, 3]);
    clock = 1_000_000;
    expect(service.expireNow().map((d) => d.scope.country)).toEqual(['GB']);
    expect(service.expireNow()).toEqual([]);
  });

  it('the expiry sweep runs on its own', async () => {
    let clock = 0;
    const service = createSteeringService({ log: silentLogger(), now: () => clock, config: testConfig(), expirySweepMs: 10 });
    await service.start();
    service.submit(demote('US', 'cdn-a', ['cdn-b'], { ttlMs: 1000 }));
    clock = 2000;
    await waitFor('sweep', () => service.current()[0]?.action === 'neutral');
    await service.stop();
  });

  it('publishes applied decisions as Avro on qoe.steering.v1, keyed by scope', async () => {
    const bus = createMemoryBus({ maxBacklog: 1000 });
    const service = createSteeringService({ bus, log: silentLogger(), now: Date.now, config: testConfig(), expirySweepMs: 0 });
    await service.start();
    service.submit(demote('US', 'cdn-a', ['cdn-b']));
    service.setKillSwitch(true, 't');
    service.submit(demote('GB', 'cdn-a', ['cdn-b'])); // suppressed: not published
    await service.flush();
    const got: Array<{ key: string; d: SteeringDecision }> = [];
    const consumer = bus.consumer({ groupId: 'check', topics: [TOPICS.steering] });
    await consumer.run({ eachBatch: async (b) => void got.push(...b.records.map((r) => ({ key: r.key, d: decodeDecision(r.value) }))) });
    await waitFor('records', () => got.length === 2);
    expect(got.map((g) => [g.key, g.d.seq, g.d.action])).toEqual([['US/', 1, 'demote'], ['US/', 2, 'kill_switch']]);
    await consumer.close();
    await bus.close();
  });

  it('a failing store does not hold decisions back: applied at once, the failure counted', async () => {
    const failing: Store = {
      kind: 'chdb',
      exec: async () => undefined,
      query: async () => [],
      insert: async () => {
        throw new QoeError('QOE_ERR_STORE_UNAVAILABLE');
      },
      version: async () => 'x',
      close: async () => undefined,
    };
    const service = createSteeringService({ store: failing, log: silentLogger(), now: Date.now, config: testConfig(), expirySweepMs: 0 });
    await service.start();
    service.submit(demote('US', 'cdn-a', ['cdn-b']));
    expect(service.setKillSwitch(true, 't')).toHaveLength(1);
    expect(service.current()[0]?.action).toBe('kill_switch');
    await service.flush();
    expect(service.stats()).toMatchObject({ persistFailures: 2, pendingWrites: 0 });
  });

  it('bounds the write queue: the oldest pending write is dropped and counted', async () => {
    let release: () => void = () => undefined;
    const slow: Store = {
      kind: 'chdb',
      exec: async () => undefined,
      query: async () => [],
      insert: () => new Promise<void>((r) => (release = r)),
      version: async () => 'x',
      close: async () => undefined,
    };
    const service = createSteeringService({ store: slow, log: silentLogger(), now: Date.now, config: testConfig(), expirySweepMs: 0, maxPendingWrites: 2 });
    await service.start();
    for (let i = 0; i < 5; i += 1) service.submit(demote('US', 'cdn-a', ['cdn-b']));
    // The first one is in flight; of the four queued behind it, two fit.
    expect(service.stats()).toMatchObject({ droppedWrites: 2, pendingWrites: 2, lastSeq: 5 });
    release();
    await waitFor('second batch in flight', () => service.stats().pendingWrites === 0);
    release();
    await service.flush();
  });
});
