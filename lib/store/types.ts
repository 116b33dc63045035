/**
 * The store: ClickHouse, embedded (chDB) or a server (@clickhouse/client), behind one interface.
 * SQL is written once (sql/) and must run on ClickHouse 18.16 (Debian's server) and current
 * versions (chDB). Values are bound client-side by sql/bind.ts, typed per placeholder, so the same
 * parameterised statements work on servers that predate server-side query parameters.
 */

export type Row = Record<string, unknown>;

export interface Store {
  readonly kind: 'chdb' | 'clickhouse';
  /** Runs a statement with no result (DDL). */
  exec(sql: string): Promise<void>;
  /** Runs a SELECT; `sql` may hold {name:Type} placeholders bound from `params`. */
  query<T extends Row = Row>(sql: string, params?: Record<string, unknown>): Promise<T[]>;
  /** Inserts rows (JSONEachRow semantics: keys are column names). */
  insert(table: string, rows: Row[]): Promise<void>;
  /** The server version string, e.g. '18.16.1' or '26.7.2.1'. */
  version(): Promise<string>;
  close(): Promise<void>;
}
