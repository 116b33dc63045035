import type { Logger } from '../logger.js';
import type { Config } from '../config.js';
import { migrate } from '../../sql/migrate.js';
import { createChdbStore } from './chdb.js';
import { createClickHouseStore } from './clickhouse.js';
import type { Store } from './types.js';

export type { Row, Store } from './types.js';
export { createChdbStore, type ChdbStoreOptions } from './chdb.js';
export { createClickHouseStore, classifyClickHouseError, type ClickHouseStoreOptions } from './clickhouse.js';

/**
 * Opens the store the configuration names (a ClickHouse URL → server, none → chDB in
 * `<dataDir>/chdb`) and brings its schema up to date (sql/NNN_*.sql). A store whose migrations fail
 * is closed before the error is thrown.
 */
export async function createStore(config: Config['store'], log: Logger): Promise<Store> {
  const store =
    config.kind === 'clickhouse'
      ? await createClickHouseStore({ url: config.url, database: config.database, log })
      : await createChdbStore({ dataDir: config.dataDir, database: config.database, log });
  try {
    const result = await migrate(store, { database: config.database, log: log.child({ component: 'migrate' }) });
    log.info({ kind: store.kind, database: config.database, applied: result.applied, version: await store.version() }, 'store ready');
    return store;
  } catch (err) {
    await store.close();
    throw err;
  }
}
