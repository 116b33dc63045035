import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { loadConfig, type Config } from '../../lib/config.js';
import { createLogger, silentLogger } from '../../lib/logger.js';
import { startRuntime, type Runtime } from '../../lib/runtime.js';

/** A data dir removed after the test file. */
export function tempDataDir(prefix = 'qoe-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * Settings for replaying simulated (historic) traffic as fast as possible: old client timestamps are
 * not clock skew, and the simulator's per-view batching delays events by up to its batch interval.
 */
export function replayEnv(dataDir: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    PORT: '0',
    QOE_HOST: '127.0.0.1',
    QOE_DATA_DIR: dataDir,
    QOE_PARTITIONS: '4',
    QOE_MAX_CLOCK_SKEW_MS: String(365 * 86_400_000),
    QOE_MAX_OUT_OF_ORDER_MS: '60000',
    QOE_IDLE_PARTITION_MS: '3000',
    QOE_SINK_FLUSH_MS: '200',
    QOE_LOG_LEVEL: 'warn',
    ...extra,
  };
}

/** A runtime of the tests: silent, unless QOE_TEST_LOG_LEVEL names a level to log at (to stdout). */
export async function startTestRuntime(env: Record<string, string>): Promise<{ runtime: Runtime; config: Config }> {
  const config = loadConfig(env);
  const level = process.env.QOE_TEST_LOG_LEVEL;
  const runtime = await startRuntime(config, level === undefined || level === '' ? silentLogger() : createLogger(level));
  return { runtime, config };
}

export async function waitUntil(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** True once the processor holds no session and no unemitted window: everything is on its way out. */
export function processorIsIdle(runtime: Runtime): boolean {
  for (const ps of runtime.processor?.partitions().values() ?? []) {
    if (ps.sessions.size > 0 || ps.open.size > 0 || ps.corrections.size > 0) return false;
  }
  return true;
}
