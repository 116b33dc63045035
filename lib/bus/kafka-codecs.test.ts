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

  it('takes both paths: frames below and above the decompress threshold', async () => {
    const small = await lz4Codec.compress({ buffer: payload(10_000) });
    const large = await lz4Codec.compress({ buffer: randomBytes(LZ4_SYNC_MAX_BYTES.decompress + 10_000) });
    expect(small.length).toBeLessThanOrEqual(LZ4_SYNC_MAX_BYTES.decompress);
    expect(large.length).toBeGreaterThan(LZ4_SYNC_MAX_BYTES.decompress);
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
