/** Window maths: tumbling, epoch-aligned windows [start, start + windowMs). */

export function windowStartOf(tsMs: number, windowMs: number): number {
  return Math.floor(tsMs / windowMs) * windowMs;
}

export interface WindowPiece {
  windowStartMs: number;
  ms: number;
}

/**
 * Splits [fromMs, toMs) at window boundaries. Each millisecond lands in exactly one piece;
 * an empty or inverted interval yields nothing.
 */
export function splitInterval(fromMs: number, toMs: number, windowMs: number): WindowPiece[] {
  const pieces: WindowPiece[] = [];
  let start = fromMs;
  while (start < toMs) {
    const w = windowStartOf(start, windowMs);
    const end = Math.min(toMs, w + windowMs);
    pieces.push({ windowStartMs: w, ms: end - start });
    start = end;
  }
  return pieces;
}
