import type { Sink } from '../../processors/sink.js';

/** Starts the sink, flushes until every record was delivered, inserted and committed (or the timeout), and stops it. */
export async function runSinkUntilDrained(sink: Sink, timeoutMs = 30_000): Promise<void> {
  await sink.start();
  const deadline = Date.now() + timeoutMs;
  do {
    await sink.flush();
    await new Promise((r) => setTimeout(r, 50));
  } while ((await sink.lag()) > 0 && Date.now() < deadline);
  await sink.stop();
}
