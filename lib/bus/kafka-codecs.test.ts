import { randomBytes } from 'node:crypto';
import { compressFrame, decompressFrame } from 'lz4-napi';
import { describe, expect, it } from 'vitest';
import { LZ4_SYNC_MAX_BYTES, lz4Codec } from './kafka-codecs.js';

/** Compressible text with some random bytes in it, `n` bytes long. */
function payload(n: number): Buffer {
  const chunks: Buffer[] = [];
  for (let size = 0; size < n; ) {
    const c = Buffer.concat([Buffer.from(`{"sessionId":"s-${size % 97}","cdn":"cdn-a","country":"DE","note":"Grüße ✓"}`), randomBytes(8)]);
    chunks.push(c);
    size += c.length;
  }
  return Buffer.concat(chunks).subarray(0, n);
}

describe('LZ4 codec: small frames on the calling thread, large ones in the pool', () => {
  // Each size on both sides of a threshold: the sync and the async path of compress and of decompress.
  const sizes = [0, 1, 500, 60 * 1024, LZ4_SYNC_MAX_BYTES.compress, LZ4_SYNC_MAX_BYTES.compress + 1, 2 * 1024 * 1024];

  it.each(sizes)('round-trips %i bytes, byte for byte what lz4-napi\'s async calls make and read', async (n) => {
    const raw = payload(n);
    const frame = await lz4Codec.compress({ buffer: raw });
    expect(Buffer.compare(frame, await compressFrame(raw))).toBe(0);
    expect(Buffer.compare(await lz4Codec.decompress(frame), raw)).toBe(0);
    expect(Buffer.compare(await decompressFrame(frame), raw)).toBe(0);
  });

  it('decompresses a frame up to the threshold on the calling thread, a larger one in the pool', async () => {
    const rawSmall = payload(10_000);
    const rawLarge = randomBytes(LZ4_SYNC_MAX_BYTES.decompress + 10_000);
    const small = await compressFrame(rawSmall);
    const large = await compressFrame(rawLarge);
    expect(small.length).toBeLessThanOrEqual(LZ4_SYNC_MAX_BYTES.decompress);
    expect(large.length).toBeGreaterThan(LZ4_SYNC_MAX_BYTES.decompress);
    // Done on the calling thread, the promise is settled before any event-loop turn; work handed to
    // libuv's pool can only settle after one (its completion is an event-loop callback).
    const settledWithinMicrotasks = async (p: Promise<Buffer>): Promise<boolean> => {
      let settled = false;
      void p.then(() => (settled = true));
      for (let i = 0; i < 5; i++) await Promise.resolve();
      return settled;
    };
    const pSmall = lz4Codec.decompress(small);
    expect(await settledWithinMicrotasks(pSmall)).toBe(true);
    const pLarge = lz4Codec.decompress(large);
    expect(await settledWithinMicrotasks(pLarge)).toBe(false);
    expect(Buffer.compare(await pSmall, rawSmall)).toBe(0);
    expect(Buffer.compare(await pLarge, rawLarge)).toBe(0);
  });

  it('rejects a corrupt frame (a promise, never a throw), on either path', async () => {
    for (const n of [5_000, LZ4_SYNC_MAX_BYTES.decompress * 2]) {
      const frame = Buffer.from(await lz4Codec.compress({ buffer: randomBytes(n) }));
      frame.writeUInt32LE(0, 0); // not the LZ4 frame magic
      let threw = false;
      const p = (() => {
        try {
          return lz4Codec.decompress(frame);
        } catch {
          threw = true;
          return undefined;
        }
      })();
      expect(threw).toBe(false);
      await expect(p).rejects.toThrow();
    }
  });
});
