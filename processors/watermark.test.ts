import { describe, expect, it } from 'vitest';
import {
  LAGGING_IDLE_FACTOR, LAGGING_IDLE_MIN_MS, laggingIdleMs, createWatermarkTracker, currentWatermark, markCaughtUp, observeEventTime, trackPartition,
} from './watermark.js';

const s = { maxOutOfOrderMs: 1000, idlePartitionMs: 5000 };

describe('watermark', () => {
  it('is the minimum over active partitions, minus the out-of-order bound, and never moves back', () => {
    const t = createWatermarkTracker();
    observeEventTime(t, 0, 50_000, 0);
    observeEventTime(t, 1, 30_000, 0);
    expect(currentWatermark(t, s, 100)).toBe(29_000);
    observeEventTime(t, 1, 20_000, 200); // older event: max event time stays
    expect(currentWatermark(t, s, 300)).toBe(29_000);
    observeEventTime(t, 1, 60_000, 400);
    expect(currentWatermark(t, s, 500)).toBe(49_000);
  });

  it('a quiet partition stops holding it back after idlePartitionMs', () => {
    const t = createWatermarkTracker();
    observeEventTime(t, 0, 50_000, 0);
    observeEventTime(t, 1, 30_000, 0);
    observeEventTime(t, 0, 58_000, 4000);
    expect(currentWatermark(t, s, 4999)).toBe(29_000);
    expect(currentWatermark(t, s, 5000)).toBe(57_000);
  });

  it('a partition with a backlog holds it back while it waits its turn, until read up to its end', () => {
    const t = createWatermarkTracker();
    trackPartition(t, 1, 30_000, 0, true); // assigned with lag: kafkajs delivers partition 0 first
    for (let now = 0; now <= 20_000; now += 1000) observeEventTime(t, 0, 100_000 + now, now);
    expect(currentWatermark(t, s, 20_000)).toBe(29_000);
    observeEventTime(t, 1, 40_000, 21_000);
    markCaughtUp(t, 1, false); // a chunk, more to come
    expect(currentWatermark(t, s, 27_000)).toBe(39_000);
    markCaughtUp(t, 1, true); // read up to its high watermark: quiet from now on means idle
    observeEventTime(t, 0, 125_000, 25_500);
    expect(currentWatermark(t, s, 25_999)).toBe(39_000);
    expect(currentWatermark(t, s, 26_000)).toBe(124_000);
  });

  it('with a short idle time, a lagging partition still holds for LAGGING_IDLE_MIN_MS', () => {
    const short = { maxOutOfOrderMs: 1000, idlePartitionMs: 1000 };
    const t = createWatermarkTracker();
    trackPartition(t, 1, 30_000, 0, true);
    observeEventTime(t, 0, 900_000, LAGGING_IDLE_MIN_MS - 1);
    expect(currentWatermark(t, short, LAGGING_IDLE_MIN_MS - 1)).toBe(29_000);
    expect(currentWatermark(t, short, LAGGING_IDLE_MIN_MS)).toBe(899_000);
  });

  it('a lagging partition that never delivers is idle after the safety bound', () => {
    const t = createWatermarkTracker();
    trackPartition(t, 1, 30_000, 0, true);
    const bound = laggingIdleMs(s);
    expect(bound).toBe(Math.max(LAGGING_IDLE_FACTOR * s.idlePartitionMs, LAGGING_IDLE_MIN_MS));
    observeEventTime(t, 0, 900_000, bound);
    expect(currentWatermark(t, s, bound - 1)).toBe(29_000);
    expect(currentWatermark(t, s, bound)).toBe(899_000);
  });
});
