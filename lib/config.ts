import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { readFileSync } from 'node:fs';
import { KAFKA_COMPRESSIONS, KAFKA_SASL_MECHANISMS, type KafkaCompression, type KafkaSecurity } from './bus/types.js';
import { QoeError } from './errors.js';
import { DIMENSIONS, dimensionNamed, type Dimension } from '../schemas/events.js';
import { parseSteeringEnv, STEERING_ENV, type SteeringConfig } from '../steering/config.js';

/**
 * The only reader of process.env. Every setting: env var, default, validation. The README's
 * configuration table is checked against CONFIG_SPEC by a test.
 */

export const ROLES = ['ingest', 'processor', 'sink', 'detector'] as const;
export type Role = (typeof ROLES)[number];

interface Spec {
  env: string;
  default: string;
  doc: string;
}

export const CONFIG_SPEC = {
  port: { env: 'PORT', default: '8080', doc: 'HTTP port (0 = any free port)' },
  host: { env: 'QOE_HOST', default: '0.0.0.0', doc: 'HTTP listen address' },
  dataDir: { env: 'QOE_DATA_DIR', default: './data', doc: 'embedded runtime: chDB data and processor checkpoints' },
  roles: { env: 'QOE_ROLES', default: 'all', doc: 'comma list of ingest, processor, sink, detector, or all' },
  kafkaBrokers: { env: 'QOE_KAFKA_BROKERS', default: '', doc: 'comma list host:port; set = Kafka bus, unset = in-memory bus' },
  kafkaCompression: { env: 'QOE_KAFKA_COMPRESSION', default: 'lz4', doc: 'compression of the record batches qoe-stream produces to Kafka: lz4, gzip or none (lz4: a tenth of gzip\'s CPU for ~1.4× its bytes; none: no CPU, several times the network and broker disk)' },
  kafkaTls: { env: 'QOE_KAFKA_TLS', default: 'false', doc: 'TLS to the Kafka brokers (their certificates checked against the system\'s CAs, or QOE_KAFKA_TLS_CA_FILE)' },
  kafkaTlsCaFile: { env: 'QOE_KAFKA_TLS_CA_FILE', default: '', doc: 'PEM file of the CA(s) that signed the brokers\' certificates (needs QOE_KAFKA_TLS=true); unset = the system\'s CAs' },
  kafkaSaslMechanism: { env: 'QOE_KAFKA_SASL_MECHANISM', default: '', doc: 'SASL authentication to the brokers: plain, scram-sha-256 or scram-sha-512 (with QOE_KAFKA_SASL_USERNAME and QOE_KAFKA_SASL_PASSWORD); unset = none. Use TLS with plain: it sends the password as is' },
  kafkaSaslUsername: { env: 'QOE_KAFKA_SASL_USERNAME', default: '', doc: 'SASL user name' },
  kafkaSaslPassword: { env: 'QOE_KAFKA_SASL_PASSWORD', default: '', doc: 'SASL password (taken as is, not trimmed)' },
  schemaRegistryUrl: { env: 'QOE_SCHEMA_REGISTRY_URL', default: '', doc: 'http(s)://[user:pass@]host:port[/path] of a Confluent-compatible schema registry; set = Confluent framing (magic 0 + schema id) on Avro topics, unset = Avro single-object encoding' },
  clickhouseUrl: { env: 'QOE_CLICKHOUSE_URL', default: '', doc: 'http(s)://user:pass@host:8123; set = ClickHouse server, unset = chDB' },
  clickhouseDatabase: { env: 'QOE_CLICKHOUSE_DATABASE', default: 'qoe', doc: 'database holding the qoe_* tables' },
  partitions: { env: 'QOE_PARTITIONS', default: '8', doc: 'partitions of qoe.beacons.v1 / qoe.metrics.v1' },
  busMaxBacklog: { env: 'QOE_BUS_MAX_BACKLOG', default: '200000', doc: 'in-memory bus: uncommitted records per partition before ingest answers 503' },
  windowMs: { env: 'QOE_WINDOW_MS', default: '10000', doc: 'tumbling window length (ms, a multiple of 1000)' },
  graceMs: { env: 'QOE_GRACE_MS', default: '7500', doc: 'how long after its end (in event time) a window still takes events, as delta rows after its on-time rows (ms)' },
  maxOutOfOrderMs: { env: 'QOE_MAX_OUT_OF_ORDER_MS', default: '500', doc: 'watermark = max event time − this (ms); a window fires when the watermark passes its end' },
  idlePartitionMs: { env: 'QOE_IDLE_PARTITION_MS', default: '1000', doc: 'a partition read to its end and silent this long (processing time) stops holding the watermark back; one with records still to read holds it max(10 × this, 50 s)' },
  sessionTimeoutMs: { env: 'QOE_SESSION_TIMEOUT_MS', default: '60000', doc: 'a session with no event for this long (event time) expires' },
  windowDimensions: { env: 'QOE_WINDOW_DIMENSIONS', default: 'all', doc: "dimensions kept in the window tables: all, or a comma list that includes cdn and country (camelCase or snake_case); the others are stored as '' and cannot be grouped or filtered by. Bounds the rows per window at scale (docs/operations.md)" },
  maxSessions: { env: 'QOE_MAX_SESSIONS', default: '500000', doc: 'open sessions per processor partition; the oldest is expired at the bound' },
  maxClockSkewMs: { env: 'QOE_MAX_CLOCK_SKEW_MS', default: '300000', doc: 'a session whose first event is older than its receive time by more than this has its clock corrected (ms)' },
  maxClockAheadMs: { env: 'QOE_MAX_CLOCK_AHEAD_MS', default: '5000', doc: 'a client clock ahead of server time by more than this is corrected; no event time passes receive time + this (ms)' },
  commitIntervalMs: { env: 'QOE_PROCESSOR_COMMIT_INTERVAL_MS', default: '1000', doc: 'Kafka: the longest processed input waits for its transaction when no window fires (ms); longer = fewer transactions and changelog records, more input read again after a crash' },
  snapshotIntervalMs: { env: 'QOE_PROCESSOR_SNAPSHOT_INTERVAL_MS', default: '30000', doc: 'Kafka: how often a processor partition writes its changed sessions and windows to the changelog (ms); in between a transaction logs only the input and window moves since, which a restore after a crash reads and applies again. Longer = fewer changelog records per event, longer restores; 0 = with every transaction' },
  fetchMinBytes: { env: 'QOE_PROCESSOR_FETCH_MIN_BYTES', default: '131072', doc: 'Kafka: a processor fetch of input returns once this many bytes (as stored, compressed) are ready, or after QOE_PROCESSOR_FETCH_MAX_WAIT_MS; fewer, larger batches when input arrives as a stream (1 = at once)' },
  fetchMaxWaitMs: { env: 'QOE_PROCESSOR_FETCH_MAX_WAIT_MS', default: '200', doc: 'Kafka: longest a processor fetch waits for QOE_PROCESSOR_FETCH_MIN_BYTES (ms): what it can add to the freshness of a window under light traffic' },
  ebvsMinMs: { env: 'QOE_EBVS_MIN_MS', default: '0', doc: 'exits before video start shorter than this are not scored as EBVS (Mux uses 1000)' },
  sinkBatchRows: { env: 'QOE_SINK_BATCH_ROWS', default: '5000', doc: 'rows per ClickHouse insert' },
  sinkFlushMs: { env: 'QOE_SINK_FLUSH_MS', default: '1000', doc: 'longest a row waits before insert (ms)' },
  bodyLimitBytes: { env: 'QOE_BODY_LIMIT_BYTES', default: '1048576', doc: 'largest accepted request body (bytes)' },
  corsOrigins: { env: 'QOE_CORS_ORIGINS', default: '*', doc: "comma list of allowed origins, or '*'" },
  trustProxy: { env: 'QOE_TRUST_PROXY', default: 'false', doc: 'take the client IP from X-Forwarded-For (true behind a load balancer)' },
  ipHashSecret: { env: 'QOE_IP_HASH_SECRET', default: '', doc: 'key of the client IP hash; empty = random per process' },
  detectorMinConcurrentSessions: { env: 'QOE_DETECTOR_MIN_CONCURRENT_SESSIONS', default: '40', doc: 'detector: a CDN is judged in a scope only with at least this many concurrent sessions' },
  detectorMinVolume: { env: 'QOE_DETECTOR_MIN_VOLUME', default: '', doc: 'detector: minimum denominator (attempts, plays, requests…) per metric and window; empty = per-metric defaults' },
  detectorMinHistoryWindows: { env: 'QOE_DETECTOR_MIN_HISTORY_WINDOWS', default: '30', doc: 'detector: windows of history before a series is compared with its own baseline' },
  detectorSpanWindows: { env: 'QOE_DETECTOR_SPAN_WINDOWS', default: '3', doc: 'detector: windows pooled into the current level' },
  detectorPersistence: { env: 'QOE_DETECTOR_PERSISTENCE', default: '2/3', doc: 'detector: k/m — degraded in at least k of the last m windows' },
  detectorCooldownMs: { env: 'QOE_DETECTOR_COOLDOWN_MS', default: '300000', doc: 'detector: at most one decision per scope per this long (event time)' },
  detectorRecoveryWindows: { env: 'QOE_DETECTOR_RECOVERY_WINDOWS', default: '6', doc: 'detector: consecutive good windows before a demoted CDN is restored (hysteresis)' },
  detectorAsnScopes: { env: 'QOE_DETECTOR_ASN_SCOPES', default: 'false', doc: 'detector: also judge country × ASN scopes' },
  logLevel: { env: 'QOE_LOG_LEVEL', default: 'info', doc: 'pino level' },
} as const satisfies Record<string, Spec>;

/** Every environment variable qoe-stream reads, in documentation order. */
export const ALL_ENV_SPECS: ReadonlyArray<{ env: string; default: string; doc: string }> = [...Object.values(CONFIG_SPEC), ...Object.values(STEERING_ENV)];

export interface Config {
  http: { port: number; host: string; bodyLimitBytes: number; corsOrigins: string[] | '*'; trustProxy: boolean };
  roles: ReadonlySet<Role>;
  dataDir: string;
  bus: { kind: 'memory' | 'kafka'; brokers: string[]; partitions: number; maxBacklog: number; compression: KafkaCompression; security: KafkaSecurity };
  /** url '' = no registry: Avro single-object encoding. */
  schemaRegistry: { url: string };
  store: { kind: 'chdb' | 'clickhouse'; url: string; database: string; dataDir: string };
  processor: {
    windowMs: number;
    graceMs: number;
    maxOutOfOrderMs: number;
    idlePartitionMs: number;
    sessionTimeoutMs: number;
    /** Dimensions kept in the window tables, in DIMENSIONS order (all of them by default). */
    windowDims: readonly Dimension[];
    maxSessions: number;
    maxClockSkewMs: number;
    maxClockAheadMs: number;
    ebvsMinMs: number;
    commitIntervalMs: number;
    snapshotIntervalMs: number;
    fetchMinBytes: number;
    fetchMaxWaitMs: number;
  };
  sink: { batchRows: number; flushMs: number };
  privacy: { ipHashSecret: string };
  steering: SteeringConfig;
  detector: {
    minConcurrentSessions: number;
    minVolume: number | null;
    minHistoryWindows: number;
    spanWindows: number;
    persistenceK: number;
    persistenceM: number;
    cooldownMs: number;
    recoveryWindows: number;
    asnScopes: boolean;
  };
  logLevel: string;
}

type Env = Record<string, string | undefined>;

function raw(env: Env, key: keyof typeof CONFIG_SPEC): string {
  const spec = CONFIG_SPEC[key];
  const v = env[spec.env];
  return v === undefined || v === '' ? spec.default : v.trim();
}

function int(env: Env, key: keyof typeof CONFIG_SPEC, min: number, max: number): number {
  const s = raw(env, key);
  const n = Number(s);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new QoeError('QOE_ERR_CONFIG_INVALID', `${CONFIG_SPEC[key].env}=${s}: expected an integer in [${min}, ${max}]`);
  }
  return n;
}

function bool(env: Env, key: keyof typeof CONFIG_SPEC): boolean {
  const s = raw(env, key).toLowerCase();
  if (s === 'true' || s === '1') return true;
  if (s === 'false' || s === '0') return false;
  throw new QoeError('QOE_ERR_CONFIG_INVALID', `${CONFIG_SPEC[key].env}=${s}: expected true or false`);
}

function list(s: string): string[] {
  return s.split(',').map((x) => x.trim()).filter((x) => x.length > 0);
}

function compression(s: string): KafkaCompression {
  const c = KAFKA_COMPRESSIONS.find((k) => k === s);
  if (c !== undefined) return c;
  throw new QoeError('QOE_ERR_CONFIG_INVALID', `QOE_KAFKA_COMPRESSION=${s}: expected ${KAFKA_COMPRESSIONS.join(', ')}`);
}

function kafkaSecurity(env: Env): KafkaSecurity {
  const tls = bool(env, 'kafkaTls');
  const caFile = raw(env, 'kafkaTlsCaFile');
  const out: KafkaSecurity = { tls };
  if (caFile !== '') {
    if (!tls) throw new QoeError('QOE_ERR_CONFIG_INVALID', 'QOE_KAFKA_TLS_CA_FILE is set but QOE_KAFKA_TLS is not true');
    let pem: string;
    try {
      pem = readFileSync(caFile, 'utf8');
    } catch (err) {
      throw new QoeError('QOE_ERR_CONFIG_INVALID', `QOE_KAFKA_TLS_CA_FILE=${caFile}: cannot read it (${(err as Error).message})`);
    }
    if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new QoeError('QOE_ERR_CONFIG_INVALID', `QOE_KAFKA_TLS_CA_FILE=${caFile}: no PEM certificate in it`);
    out.caPem = pem;
  }
  const mechanism = raw(env, 'kafkaSaslMechanism').toLowerCase();
  const username = raw(env, 'kafkaSaslUsername');
  const password = env[CONFIG_SPEC.kafkaSaslPassword.env] ?? '';
  if (mechanism === '') {
    if (username !== '' || password !== '') throw new QoeError('QOE_ERR_CONFIG_INVALID', 'QOE_KAFKA_SASL_USERNAME/PASSWORD are set but QOE_KAFKA_SASL_MECHANISM is not');
    return out;
  }
  const m = KAFKA_SASL_MECHANISMS.find((k) => k === mechanism);
  if (m === undefined) throw new QoeError('QOE_ERR_CONFIG_INVALID', `QOE_KAFKA_SASL_MECHANISM=${mechanism}: expected ${KAFKA_SASL_MECHANISMS.join(', ')}`);
  if (username === '') throw new QoeError('QOE_ERR_CONFIG_INVALID', `QOE_KAFKA_SASL_USERNAME is required with QOE_KAFKA_SASL_MECHANISM=${m}`);
  if (password === '') throw new QoeError('QOE_ERR_CONFIG_INVALID', `QOE_KAFKA_SASL_PASSWORD is required with QOE_KAFKA_SASL_MECHANISM=${m}`);
  out.sasl = { mechanism: m, username, password };
  return out;
}

function parseRoles(s: string): Set<Role> {
  const names = list(s);
  if (names.length === 1 && names[0] === 'all') return new Set(ROLES);
  for (const n of names) {
    if (!(ROLES as readonly string[]).includes(n)) {
      throw new QoeError('QOE_ERR_CONFIG_INVALID', `QOE_ROLES: unknown role '${n}' (expected all or ${ROLES.join(', ')})`);
    }
  }
  if (names.length === 0) throw new QoeError('QOE_ERR_CONFIG_INVALID', 'QOE_ROLES is empty');
  return new Set(names as Role[]);
}

export function loadConfig(env: Env = process.env): Config {
  const dataDir = resolve(raw(env, 'dataDir'));
  const brokers = list(raw(env, 'kafkaBrokers'));
  const clickhouseUrl = raw(env, 'clickhouseUrl');
  if (clickhouseUrl !== '' && !/^https?:\/\//.test(clickhouseUrl)) {
    throw new QoeError('QOE_ERR_CONFIG_INVALID', `QOE_CLICKHOUSE_URL=${clickhouseUrl}: expected an http(s) URL`);
  }
  const schemaRegistryUrl = registryUrl(raw(env, 'schemaRegistryUrl'));
  const windowMs = int(env, 'windowMs', 1000, 3_600_000);
  if (windowMs % 1000 !== 0) throw new QoeError('QOE_ERR_CONFIG_INVALID', 'QOE_WINDOW_MS must be a multiple of 1000');
  const origins = raw(env, 'corsOrigins');
  const database = raw(env, 'clickhouseDatabase');
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(database)) {
    throw new QoeError('QOE_ERR_CONFIG_INVALID', `QOE_CLICKHOUSE_DATABASE=${database}: not an identifier`);
  }
  const config: Config = {
    http: {
      port: int(env, 'port', 0, 65535),
      host: raw(env, 'host'),
      bodyLimitBytes: int(env, 'bodyLimitBytes', 1024, 64 * 1024 * 1024),
      corsOrigins: origins === '*' ? '*' : list(origins),
      trustProxy: bool(env, 'trustProxy'),
    },
    roles: parseRoles(raw(env, 'roles')),
    dataDir,
    bus: {
      kind: brokers.length > 0 ? 'kafka' : 'memory',
      brokers,
      partitions: int(env, 'partitions', 1, 1024),
      maxBacklog: int(env, 'busMaxBacklog', 100, 100_000_000),
      compression: compression(raw(env, 'kafkaCompression')),
      security: kafkaSecurity(env),
    },
    schemaRegistry: { url: schemaRegistryUrl },
    store: { kind: clickhouseUrl === '' ? 'chdb' : 'clickhouse', url: clickhouseUrl, database, dataDir },
    processor: {
      windowMs,
      graceMs: int(env, 'graceMs', 0, 3_600_000),
      maxOutOfOrderMs: int(env, 'maxOutOfOrderMs', 0, 3_600_000),
      idlePartitionMs: int(env, 'idlePartitionMs', 100, 3_600_000),
      sessionTimeoutMs: int(env, 'sessionTimeoutMs', 1000, 86_400_000),
      windowDims: windowDimensions(raw(env, 'windowDimensions'), bool(env, 'detectorAsnScopes')),
      maxSessions: int(env, 'maxSessions', 1, 100_000_000),
      maxClockSkewMs: int(env, 'maxClockSkewMs', 1000, 365 * 86_400_000),
      maxClockAheadMs: int(env, 'maxClockAheadMs', 0, 86_400_000),
      ebvsMinMs: int(env, 'ebvsMinMs', 0, 600_000),
      commitIntervalMs: int(env, 'commitIntervalMs', 0, 600_000),
      snapshotIntervalMs: int(env, 'snapshotIntervalMs', 0, 3_600_000),
      fetchMinBytes: int(env, 'fetchMinBytes', 1, 64 * 1024 * 1024),
      fetchMaxWaitMs: int(env, 'fetchMaxWaitMs', 0, 30_000),
    },
    sink: { batchRows: int(env, 'sinkBatchRows', 1, 1_000_000), flushMs: int(env, 'sinkFlushMs', 10, 600_000) },
    privacy: { ipHashSecret: raw(env, 'ipHashSecret') || randomBytes(32).toString('hex') },
    steering: parseSteeringEnv(env),
    detector: detectorConfig(env),
    logLevel: raw(env, 'logLevel'),
  };
  return deepFreeze(config);
}

/**
 * QOE_WINDOW_DIMENSIONS: the detector's scopes need cdn and country (and asn when it judges ASN
 * scopes), so they are always kept.
 */
function windowDimensions(s: string, asnScopes: boolean): readonly Dimension[] {
  if (s === 'all') return DIMENSIONS;
  const named = new Set<Dimension>();
  for (const n of list(s)) {
    const d = dimensionNamed(n);
    if (d === undefined) throw new QoeError('QOE_ERR_CONFIG_INVALID', `QOE_WINDOW_DIMENSIONS: unknown dimension '${n}' (all, or a comma list of ${DIMENSIONS.join(', ')})`);
    named.add(d);
  }
  const required: Dimension[] = asnScopes ? ['cdn', 'country', 'asn'] : ['cdn', 'country'];
  const missing = required.filter((d) => !named.has(d));
  if (missing.length > 0) {
    throw new QoeError('QOE_ERR_CONFIG_INVALID', `QOE_WINDOW_DIMENSIONS must include ${missing.join(', ')} (the detector's scopes${asnScopes ? ', with QOE_DETECTOR_ASN_SCOPES' : ''})`);
  }
  return DIMENSIONS.filter((d) => named.has(d));
}

/** '' or an http(s) URL; the error never repeats the URL's credentials. */
function registryUrl(s: string): string {
  if (s === '') return s;
  let u: URL | undefined;
  try {
    u = new URL(s);
  } catch {
    u = undefined;
  }
  if (u === undefined || (u.protocol !== 'http:' && u.protocol !== 'https:') || u.search !== '' || u.hash !== '') {
    const shown = u === undefined ? 'a value that is not a URL' : `${u.protocol}//${u.host}${u.pathname}`;
    throw new QoeError('QOE_ERR_CONFIG_INVALID', `QOE_SCHEMA_REGISTRY_URL: expected http(s)://[user:pass@]host[:port][/path] without query or fragment, got ${shown}`);
  }
  return s;
}

function detectorConfig(env: Env): Config['detector'] {
  const persistence = raw(env, 'detectorPersistence');
  const m = /^(\d+)\/(\d+)$/.exec(persistence);
  const k = Number(m?.[1]);
  const of = Number(m?.[2]);
  if (!m || k < 1 || k > of || of > 100) {
    throw new QoeError('QOE_ERR_CONFIG_INVALID', `QOE_DETECTOR_PERSISTENCE=${persistence}: expected k/m with 1 ≤ k ≤ m ≤ 100`);
  }
  const minVolume = raw(env, 'detectorMinVolume');
  return {
    minConcurrentSessions: int(env, 'detectorMinConcurrentSessions', 0, 10_000_000),
    minVolume: minVolume === '' ? null : int(env, 'detectorMinVolume', 0, 100_000_000),
    minHistoryWindows: int(env, 'detectorMinHistoryWindows', 1, 100_000),
    spanWindows: int(env, 'detectorSpanWindows', 1, 1000),
    persistenceK: k,
    persistenceM: of,
    cooldownMs: int(env, 'detectorCooldownMs', 0, 86_400_000),
    recoveryWindows: int(env, 'detectorRecoveryWindows', 1, 10_000),
    asnScopes: bool(env, 'detectorAsnScopes'),
  };
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !(o instanceof Set)) {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
