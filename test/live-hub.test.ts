import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLiveHub, sseEvent, type LiveHubOptions, type SseClient } from '../live/hub.js';

interface FakeClient extends SseClient {
  chunks: string[];
  ended: boolean;
  buffered: number;
}

function client(): FakeClient {
  const c: FakeClient = {
    chunks: [], ended: false, buffered: 0,
    get writableLength() { return c.buffered; },
    write(chunk) { c.chunks.push(chunk); return true; },
    end() { c.ended = true; },
  };
  return c;
}

function deferred<T>(): { promise: Promise<T>; resolve(v: T): void; reject(e: unknown): void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => { resolve = res; reject = rej; });
  return { promise, resolve, reject };
}

function hubWith(compute: () => Promise<unknown>, over: Partial<LiveHubOptions<unknown>> = {}) {
  return createLiveHub({ compute, intervalMs: 5000, heartbeatMs: 15_000, maxClients: 3, maxBufferedBytes: 1000, ...over });
}

const snapshots = (c: FakeClient): unknown[] => c.chunks.filter((x) => x.startsWith('event: snapshot')).map((x) => JSON.parse(x.split('\ndata: ')[1] ?? 'null'));

afterEach(() => {
  vi.useRealTimers();
});

describe('live hub', () => {
  it('formats one SSE event per payload', () => {
    expect(sseEvent('snapshot', { a: 'x\ny' })).toBe('event: snapshot\ndata: {"a":"x\\ny"}\n\n');
  });

  it('computes once per tick for every client, and a tick in flight is joined, not repeated', async () => {
    let n = 0;
    const gate = deferred<void>();
    const hub = hubWith(async () => {
      n += 1;
      await gate.promise;
      return { n };
    });
    const a = client();
    const b = client();
    expect(hub.add(a)).toBe(true); // the first client starts a tick
    expect(hub.add(b)).toBe(true);
    const again = hub.tick();
    gate.resolve();
    await again;
    expect(n).toBe(1);
    expect(snapshots(a)).toEqual([{ n: 1 }]);
    expect(snapshots(b)).toEqual([{ n: 1 }]);
    expect(a.chunks[0]).toBe('retry: 5000\n\n');
    await hub.tick();
    expect(n).toBe(2);
    expect(snapshots(b)).toEqual([{ n: 1 }, { n: 2 }]);
    hub.close();
  });

  it('sends the latest payload to a client that joins between ticks', async () => {
    const hub = hubWith(async () => ({ ok: true }));
    const a = client();
    hub.add(a);
    await hub.tick();
    const late = client();
    hub.add(late);
    expect(snapshots(late)).toEqual([{ ok: true }]);
    hub.close();
  });

  it('refuses clients at the bound and accepts again after one leaves', () => {
    const hub = hubWith(async () => ({}));
    const cs = [client(), client(), client()];
    for (const c of cs) expect(hub.add(c)).toBe(true);
    const extra = client();
    expect(hub.add(extra)).toBe(false);
    expect(extra.chunks).toEqual([]);
    hub.remove(cs[0]!);
    expect(hub.add(extra)).toBe(true);
    expect(hub.stats().clients).toBe(3);
    hub.close();
  });

  it('disconnects a client whose unsent bytes exceed the bound, and keeps the others', async () => {
    const hub = hubWith(async () => ({ pad: 'x'.repeat(100) }));
    const fast = client();
    const slow = client();
    hub.add(fast);
    hub.add(slow);
    slow.buffered = 5000;
    await hub.tick();
    expect(slow.ended).toBe(true);
    expect(fast.ended).toBe(false);
    expect(hub.stats()).toMatchObject({ clients: 1, droppedSlow: 1 });
    hub.close();
  });

  it('tells clients when the computation fails and keeps going', async () => {
    const errors: unknown[] = [];
    let fail = true;
    const hub = hubWith(async () => {
      if (fail) throw new Error('store down');
      return { ok: true };
    }, { onError: (e) => errors.push(e) });
    const a = client();
    hub.add(a);
    await hub.tick();
    expect(a.chunks.some((x) => x.startsWith('event: query-error\ndata: {"code":"QOE_ERR_QUERY_FAILED"'))).toBe(true);
    expect(errors).toHaveLength(1);
    fail = false;
    await hub.tick();
    expect(snapshots(a)).toEqual([{ ok: true }]);
    expect(hub.stats()).toMatchObject({ failedTicks: 1, ticks: 1 });
    hub.close();
  });

  it('ticks and heartbeats on timers only while clients are connected', async () => {
    vi.useFakeTimers();
    let n = 0;
    const hub = hubWith(async () => ({ n: ++n }));
    await vi.advanceTimersByTimeAsync(60_000);
    expect(n).toBe(0);
    const a = client();
    hub.add(a);
    await vi.advanceTimersByTimeAsync(15_000);
    expect(n).toBe(4); // on connect, then at 5, 10 and 15 s
    expect(a.chunks.filter((x) => x === ': hb\n\n')).toHaveLength(1);
    hub.remove(a);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(n).toBe(4);
    // The cached payload was dropped with the last client: a newcomer waits for a fresh one.
    const b = client();
    hub.add(b);
    expect(snapshots(b)).toEqual([]);
    await vi.advanceTimersByTimeAsync(0);
    expect(snapshots(b)).toEqual([{ n: 5 }]);
    hub.close();
  });

  it('close() ends every client', () => {
    const hub = hubWith(async () => ({}));
    const cs = [client(), client()];
    for (const c of cs) hub.add(c);
    hub.close();
    expect(cs.every((c) => c.ended)).toBe(true);
    expect(hub.stats().clients).toBe(0);
  });
});
