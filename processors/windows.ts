/** Window maths: tumbling, epoch-aligned windows [start, start + windowMs). */

export function windowStartOf(tsMs: number, windowMs: number): number {
  return Math.floor(tsMs / windowMs) * windowMs;
}
