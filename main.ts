import { loadConfig } from './lib/config.js';
import { createLogger } from './lib/logger.js';
import { startRuntime } from './lib/runtime.js';

/** `npm start`: the whole pipeline (or the roles QOE_ROLES names) in this process. */
async function main(): Promise<void> {
  const config = loadConfig(process.env);
  const log = createLogger(config.logLevel);
  const runtime = await startRuntime(config, log);
  log.info({ url: runtime.url, roles: [...config.roles], bus: config.bus.kind, store: config.store.kind, dataDir: config.dataDir }, 'qoe-stream started');
  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    runtime.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
