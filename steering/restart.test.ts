/**
 * Current decisions survive restarts: a second service over the same chDB data directory (or the same
 * bus) restores them, keeps the seq going, resumes `since`, and reverts decisions whose TTL ran out.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { createMemoryBus } from '../lib/bus/memory.js';
import { silentLogger } from '../lib/logger.js';
import { createChdbStore } from '../lib/store/chdb.js';
import { createClickHouseStore } from '../lib/store/clickhouse.js';
import { clickhouseServerSkipReason, randomDatabaseName, useClickHouseServer } from '../test/helpers/clickhouse-server.js';
import type { Store } from '../lib/store/types.js';
import { migrate } from '../sql/migrate.js';
import { createSteeringService } from './service.js';
import { demote, testConfig } from './testing.js';

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'qoe-steering-'));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function openStore(dataDir: string): Promise<Store> {
  const store = await createChdbStore({ dataDir, database: 'qoe_test' });
  await migrate(store, { database: 'qoe_test' });
  return store;
}

describe('steering restart replay', () => {
  it('restores current decisions and history from ClickHouse (chDB); expired ones revert to neutral', async () => {
    const dataDir = await tempDir();
    let clock = 1_763_980_000_000;
    const now = (): number => clock;
    const config = testConfig();

    const store1 = await openStore(dataDir);
    const first = createSteeringService({ store: store1, log: silentLogger(), now, config, expirySweepMs: 0 });
    await first.start();
    first.submit(demote('US', 'cdn-a', ['cdn-b'], { ttlMs: 3_600_000 }));
    first.submit(demote('GB', 'cdn-a', ['cdn-b'], { ttlMs: 60_000 }));
    first.submit(demote('US', 'cdn-b', ['cdn-a'], { scope: { country: 'US', asn: '7922' }, ttlMs: 3_600_000 }));
    first.setKillSwitch(true, 'test'); // 3 kill_switch decisions (seq 4..6)
    first.submit(demote('FR', 'cdn-a', ['cdn-b'])); // suppressed: stored with applied = 0
    first.setKillSwitch(false, 'test');
    first.submit(demote('US', 'cdn-a', ['cdn-b'], { ttlMs: 3_600_000 })); // seq 7
    first.submit(demote('GB', 'cdn-a', ['cdn-b'], { ttlMs: 60_000 })); // seq 8, expires before the restart
    const before = first.current();
    await first.stop();
    expect(first.stats()).toMatchObject({ persistFailures: 0, pendingWrites: 0 });
    const rows = await store1.query<{ n: number; suppressed: number }>('SELECT count() AS n, countIf(applied = 0) AS suppressed FROM qoe_steering_decisions');
    expect(rows[0]).toEqual({ n: 9, suppressed: 1 });
    await store1.close();

    clock += 120_000; // GB's 60 s TTL has passed
    const store2 = await openStore(dataDir);
    onTestFinished(() => store2.close());
    const second = createSteeringService({ store: store2, log: silentLogger(), now, config, expirySweepMs: 0 });
    await second.start();
    expect(before.map((d) => d.seq)).toEqual([6, 7, 8]);
    const after = second.current();
    // US and US/7922 as they were; GB reverted to neutral by a new decision (seq 9).
    expect(after.slice(0, 2)).toEqual(before.slice(0, 2));
    expect(after[2]).toMatchObject({ seq: 9, scope: { country: 'GB', asn: '' }, action: 'neutral', priority: ['cdn-a', 'cdn-b'] });
    const resumed = second.since(5);
    expect(resumed.ok && resumed.decisions.map((d) => d.seq)).toEqual([6, 7, 8, 9]);
    expect(second.lookup({ country: 'US', asn: '7922' })?.decision.seq).toBe(6);
    expect(second.submit(demote('DE', 'cdn-a', ['cdn-b']))).toMatchObject({ outcome: 'applied', decision: { seq: 10 } });
    await second.stop();
  });

  it('restores from the topic when there is no store, and starts with the configured kill switch', async () => {
    const bus = createMemoryBus({ maxBacklog: 10_000 });
    onTestFinished(() => bus.close());
    const first = createSteeringService({ bus, log: silentLogger(), now: Date.now, config: testConfig(), expirySweepMs: 0 });
    await first.start();
    first.submit(demote('US', 'cdn-a', ['cdn-b']));
    first.submit(demote('GB', 'cdn-a', ['cdn-b']));
    first.submit(demote('US', 'cdn-b', ['cdn-a']));
    await first.stop();

    const second = createSteeringService({ bus, log: silentLogger(), now: Date.now, config: testConfig({ killSwitch: true }), expirySweepMs: 0 });
    await second.start();
    const current = second.current();
    expect(current.map((d) => [d.scope.country, d.action])).toEqual([['GB', 'kill_switch'], ['US', 'kill_switch']]);
    expect(current.map((d) => d.seq)).toEqual([4, 5]);
    expect(second.killSwitch()).toMatchObject({ enabled: true, actor: 'config' });
    const r = second.since(0);
    expect(r.ok && r.decisions.map((d) => d.seq)).toEqual([1, 2, 3, 4, 5]);
    await second.stop();
  });
});

const serverSkip = clickhouseServerSkipReason();

describe.skipIf(serverSkip !== undefined)('steering restart replay on ClickHouse 18.16 (Debian clickhouse-server)', () => {
  const server = useClickHouseServer();

  it('the same migration, inserts and replay queries run there', async () => {
    const database = randomDatabaseName();
    const open = async (): Promise<Store> => {
      const store = await createClickHouseStore({ url: server().url, database });
      await migrate(store, { database });
      return store;
    };
    const store1 = await open();
    expect(await store1.version()).toMatch(/^18\./);
    const first = createSteeringService({ store: store1, log: silentLogger(), now: Date.now, config: testConfig(), expirySweepMs: 0 });
    await first.start();
    first.submit(demote('US', 'cdn-a', ['cdn-b']));
    first.submit(demote('GB', 'cdn-a', ['cdn-b']));
    first.submit(demote('US', 'cdn-b', ['cdn-a'], { scope: { country: 'US', asn: '7922' } }));
    first.submit(demote('US', 'cdn-b', ['cdn-a']));
    const before = first.current();
    await first.stop();
    expect(first.stats().persistFailures).toBe(0);
    await store1.close();

    const store2 = await open();
    onTestFinished(() => store2.close());
    const second = createSteeringService({ store: store2, log: silentLogger(), now: Date.now, config: testConfig(), expirySweepMs: 0 });
    await second.start();
    expect(second.current()).toEqual(before);
    const r = second.since(1);
    expect(r.ok && r.decisions.map((d) => d.seq)).toEqual([2, 3, 4]);
    await second.stop();
  });
});
