/**
 * Seeded pseudo-random numbers for the simulator: sfc32 (Small Fast Counter, PractRand-clean) seeded
 * through a 32-bit string hash, so every view gets its own stream derived from (seed, view index, purpose)
 * and a view does not change when the population size or another option changes.
 */

/** A source of uniform numbers in [0, 1). */
export type Rng = () => number;

/** cyrb53-style 32-bit mixing hash of a string, used only to derive seeds. */
export function hash32(s: string, salt = 0): number {
  let h1 = 0xdeadbeef ^ salt;
  let h2 = 0x41c6ce57 ^ salt;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (h1 ^ h2) >>> 0;
}

/** sfc32 generator from four 32-bit words. */
export function sfc32(a0: number, b0: number, c0: number, d0: number): Rng {
  let a = a0 >>> 0;
  let b = b0 >>> 0;
  let c = c0 >>> 0;
  let d = d0 >>> 0;
  const next = function sfc32Next(): number {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
  // Discard the first outputs: sfc32 mixes weak seeds within a dozen rounds.
  for (let i = 0; i < 15; i++) next();
  return next;
}

/** A generator for one purpose of one view: `createRng(42, 'view', 7)`. */
export function createRng(seed: number, ...parts: readonly (string | number)[]): Rng {
  const key = [String(seed), ...parts.map(String)].join('/');
  return sfc32(hash32(key, 1), hash32(key, 2), hash32(key, 3), hash32(key, 4));
}

export function uniform(rng: Rng, lo: number, hi: number): number {
  return lo + (hi - lo) * rng();
}

/** Integer in [lo, hi] inclusive. */
export function intBetween(rng: Rng, lo: number, hi: number): number {
  return lo + Math.floor(rng() * (hi - lo + 1));
}

export function chance(rng: Rng, p: number): boolean {
  return rng() < p;
}

/** Standard normal by Box–Muller (one of the pair is discarded: simplicity over speed). */
export function normal(rng: Rng): number {
  const u = 1 - rng(); // (0, 1]
  const v = rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** Lognormal with the given median and shape sigma (of the underlying normal). */
export function lognormal(rng: Rng, median: number, sigma: number): number {
  return median * Math.exp(sigma * normal(rng));
}

/** Exponential with the given rate (events per unit); Infinity when the rate is 0. */
export function exponential(rng: Rng, rate: number): number {
  if (rate <= 0) return Number.POSITIVE_INFINITY;
  return -Math.log(1 - rng()) / rate;
}

export function pick<T>(rng: Rng, items: readonly T[]): T {
  const item = items[Math.floor(rng() * items.length)];
  if (item === undefined) throw new Error('pick: empty list');
  return item;
}

/** Picks by weight from `[item, weight]` pairs. */
export function weighted<T>(rng: Rng, items: readonly (readonly [T, number])[]): T {
  let total = 0;
  for (const [, w] of items) total += w;
  let r = rng() * total;
  for (const [item, w] of items) {
    r -= w;
    if (r < 0) return item;
  }
  const last = items[items.length - 1];
  if (last === undefined) throw new Error('weighted: empty list');
  return last[0];
}

export function clamp(x: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, x));
}
