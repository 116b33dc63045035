// First: kafkajs patched before anything loads it, as the Kafka bus requires (lib/bus/kafkajs-patches.ts).
import '../../lib/bus/kafkajs-patches.js';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { projectPath } from '../../lib/paths.js';
import { dockerEngineReachable } from './testcontainers.js';
import { freePort } from './ports.js';

/**
 * Real Apache Kafka brokers for integration tests, run from the Maven Central jars that
 * `scripts/kafka.sh fetch` caches (no Docker): KRaft combined mode (each node is broker and
 * controller) on 127.0.0.1, free ports, a temp directory per cluster holding configs, data and one
 * log file per broker (`broker-<i>.log`; its path is printed when startup fails).
 *
 * - 1 broker: replication factor 1 / min ISR 1 for every internal topic.
 * - 3 brokers: a 3-voter static quorum, RF 3 and min.insync.replicas 2.
 *
 * Without java or the jars (and no way to fetch them), `kafkaSkipReason()` names what is missing;
 * with QOE_REQUIRE_SERVICES set (CI) it throws instead, so a skip becomes a failure.
 * Children are started under `setpriv --pdeathsig KILL` where available, and killed on exit, so a
 * crashed test run leaves no broker behind.
 *
 * With a Docker engine reachable (test/helpers/testcontainers.ts), the same cluster runs from
 * IMAGES.kafka through testcontainers instead: same properties, same interface.
 */

export interface KafkaCluster {
  /** host:port of each broker, in node order (node id = index + 1). */
  brokers: string[];
  /** host:port of each broker's SASL_SSL listener, when started with `secure`. */
  secureBrokers: string[];
  dir: string;
  /** Wall time from startKafka() to a cluster that answers describeCluster with every broker. */
  startupMs: number;
  logFile(i: number): string;
  /** Controlled shutdown (SIGTERM), waits for the process to exit. */
  stopBroker(i: number): Promise<void>;
  /** Starts a stopped broker again with its data and ports, waits until it serves. */
  startBroker(i: number): Promise<void>;
  kill9Broker(i: number): Promise<void>;
  /**
   * Kafka's own reading of broker i's log of one topic partition: `kafka-dump-log`
   * (DumpLogSegments) with --deep-iteration --print-data-log, i.e. every batch's header (offsets,
   * `compresscodec`) and every record's payload as the broker's Java code decodes it.
   */
  dumpLog(i: number, topic: string, partition: number): Promise<string>;
  /**
   * Writes `lines` (one record value each, no key) to `topic` with Kafka's own Java producer
   * (`kafka-console-producer`, acks=all) compressed with `codec`.
   */
  produceWithJava(topic: string, lines: string[], codec: 'none' | 'gzip' | 'lz4' | 'snappy' | 'zstd'): Promise<void>;
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 90_000;
const STOP_TIMEOUT_MS = 30_000;
const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function servicesRequired(): boolean {
  const v = process.env.QOE_REQUIRE_SERVICES;
  return v !== undefined && v !== '' && v !== '0';
}

let cachedLibs: { libs?: string; missing?: string } | undefined;

/** The cached jar directory, fetching it once if needed; `missing` names what is absent otherwise. */
function resolveLibs(): { libs?: string; missing?: string } {
  if (cachedLibs !== undefined) return cachedLibs;
  const java = spawnSync('java', ['-version'], { encoding: 'utf8' });
  if (java.error !== undefined || java.status !== 0) {
    cachedLibs = { missing: 'java (17+) not found on PATH: install it with `apt-get install -y openjdk-17-jre-headless`' };
    return cachedLibs;
  }
  const fetch = spawnSync('bash', [projectPath('scripts', 'kafka.sh'), 'fetch'], { encoding: 'utf8', timeout: 600_000 });
  const lines = (fetch.stdout ?? '').trim().split('\n');
  const libs = lines[lines.length - 1];
  if (fetch.status !== 0 || libs === undefined || libs === '') {
    const why = (fetch.stderr ?? '').trim().split('\n').slice(-3).join(' | ');
    cachedLibs = { missing: `Kafka broker jars: \`scripts/kafka.sh fetch\` failed (needs mvn and Maven Central): ${why}` };
    return cachedLibs;
  }
  cachedLibs = { libs };
  return cachedLibs;
}

/**
 * Why Kafka tests cannot run here, or undefined when they can. Throws when something is missing
 * and QOE_REQUIRE_SERVICES is set.
 */
export function kafkaSkipReason(): string | undefined {
  if (dockerEngineReachable()) return undefined;
  const { missing } = resolveLibs();
  if (missing === undefined) return undefined;
  if (servicesRequired()) throw new Error(`QOE_REQUIRE_SERVICES is set but ${missing}`);
  return missing;
}

/**
 * Kafka's Uuid.randomUuid().toString(): 16 random bytes, URL-safe base64 without padding, never
 * starting with '-' (the CLI would take it for an option). Made here rather than by
 * `StorageTool random-uuid` to save one JVM start (~1 s on two cores).
 */
function clusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

/**
 * An extra SASL_SSL listener (local jars only): TLS with the PEM key + certificate chain in
 * `keystorePem` (unencrypted PKCS#8 key), SASL PLAIN users and SCRAM-SHA-512 users (their credentials
 * written at format time, as KRaft takes them).
 */
export interface SecureListener {
  keystorePem: string;
  plain: Array<{ user: string; password: string }>;
  scram512: Array<{ user: string; password: string }>;
}

interface Node {
  id: number;
  port: number;
  controllerPort: number;
  securePort?: number;
  config: string;
  log: string;
  proc?: ChildProcess;
}

function secureProperties(node: Node, secure: SecureListener, keystoreFile: string): string[] {
  const jaasPlain = `org.apache.kafka.common.security.plain.PlainLoginModule required ${secure.plain.map((u) => `user_${u.user}="${u.password}"`).join(' ')};`;
  return [
    `listeners=PLAINTEXT://127.0.0.1:${node.port},CONTROLLER://127.0.0.1:${node.controllerPort},SECURE://127.0.0.1:${node.securePort}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${node.port},SECURE://127.0.0.1:${node.securePort}`,
    'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SECURE:SASL_SSL',
    'sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-512',
    `listener.name.secure.plain.sasl.jaas.config=${jaasPlain}`,
    'listener.name.secure.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;',
    'ssl.keystore.type=PEM',
    `ssl.keystore.location=${keystoreFile}`,
  ];
}

function serverProperties(node: Node, voters: string, dataDir: string, size: number, secure?: string[]): string {
  const rf = size === 1 ? 1 : 3;
  const minIsr = size === 1 ? 1 : 2;
  return [
    'process.roles=broker,controller',
    `node.id=${node.id}`,
    `controller.quorum.voters=${voters}`,
    ...(secure ?? [
      `listeners=PLAINTEXT://127.0.0.1:${node.port},CONTROLLER://127.0.0.1:${node.controllerPort}`,
      `advertised.listeners=PLAINTEXT://127.0.0.1:${node.port}`,
      'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    ]),
    'controller.listener.names=CONTROLLER',
    'inter.broker.listener.name=PLAINTEXT',
    `log.dirs=${dataDir}`,
    'num.partitions=1',
    `default.replication.factor=${rf}`,
    `min.insync.replicas=${minIsr}`,
    `offsets.topic.replication.factor=${rf}`,
    // 50 partitions by default: fewer make the first group join and transaction faster.
    'offsets.topic.num.partitions=10',
    `transaction.state.log.replication.factor=${rf}`,
    `transaction.state.log.min.isr=${minIsr}`,
    'transaction.state.log.num.partitions=10',
    `share.coordinator.state.topic.replication.factor=${rf}`,
    `share.coordinator.state.topic.min.isr=${minIsr}`,
    'group.initial.rebalance.delay.ms=0',
    'group.min.session.timeout.ms=1000',
    'auto.create.topics.enable=false',
    // Two cores: fewer threads, and a 16 MiB compaction buffer instead of 128 MiB in a 512 MiB heap.
    'num.network.threads=2',
    'num.io.threads=4',
    'log.cleaner.dedupe.buffer.size=16777216',
    '',
  ].join('\n');
}

function javaArgs(libs: string, mainClass: string, args: string[]): string[] {
  return [
    '-Xmx512m',
    '-XX:+UseG1GC',
    '-XX:MaxGCPauseMillis=20',
    ...(process.env.QOE_KAFKA_C1 === '1' ? ['-XX:TieredStopAtLevel=1'] : []),
    '-Djava.awt.headless=true',
    `-Dlog4j2.configurationFile=${projectPath('scripts', 'kafka', 'log4j2.properties')}`,
    '-cp',
    `${libs}/*`,
    mainClass,
    ...args,
  ];
}

const hasSetpriv = spawnSync('setpriv', ['--help'], { stdio: 'ignore' }).status === 0;

function spawnJava(libs: string, mainClass: string, args: string[], logFile: string): ChildProcess {
  const fd = openSync(logFile, 'a');
  const argv = javaArgs(libs, mainClass, args);
  const proc = hasSetpriv
    ? spawn('setpriv', ['--pdeathsig', 'KILL', 'java', ...argv], { stdio: ['ignore', fd, fd] })
    : spawn('java', argv, { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  live.add(proc);
  proc.once('exit', () => live.delete(proc));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const p of live) p.kill('SIGKILL');
    });
  }
  return proc;
}

function waitExit(proc: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    proc.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

async function format(libs: string, node: Node, id: string, extra: string[] = []): Promise<void> {
  const proc = spawnJava(libs, 'kafka.tools.StorageTool', ['format', '-t', id, '-c', node.config, ...extra], node.log);
  await waitExit(proc, 60_000);
  if (proc.exitCode !== 0) throw new Error(`kafka StorageTool format failed (exit ${proc.exitCode}); see ${node.log}`);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function logSays(file: string, text: string): boolean {
  try {
    return readFileSync(file, 'utf8').includes(text);
  } catch {
    return false;
  }
}

/** Until the broker answers metadata requests and lists itself (registered and unfenced). */
async function waitReady(node: Node, expectBrokers: number): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  const client = new Kafka({
    clientId: 'qoe-test-ready',
    brokers: [`127.0.0.1:${node.port}`],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1000,
    retry: { retries: 0 },
  });
  let lastErr: unknown;
  while (Date.now() < deadline) {
    const proc = node.proc;
    if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(`kafka broker ${node.id} exited during startup (code ${proc?.exitCode}); see ${node.log}`);
    }
    const admin = client.admin();
    try {
      await admin.connect();
      const { brokers } = await admin.describeCluster();
      if (brokers.some((b) => b.nodeId === node.id) && brokers.length >= expectBrokers) return;
    } catch (err) {
      lastErr = err;
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
    await sleep(150);
  }
  throw new Error(`kafka broker ${node.id} not ready after ${READY_TIMEOUT_MS} ms (${String(lastErr)}); see ${node.log}`, {
    cause: lastErr,
  });
}

/** The Docker path: the brokers of startKafka() as containers of IMAGES.kafka. */
async function startKafkaInDocker(size: 1 | 3, t0: number): Promise<KafkaCluster> {
  const { startKafkaContainers } = await import('./testcontainers.js');
  const dir = await mkdtemp(join(tmpdir(), 'qoe-kafka-'));
  const nodes: Node[] = [];
  for (let i = 0; i < size; i++) nodes.push({ id: i + 1, port: await freePort(), controllerPort: 0, config: '', log: '' });
  const cluster = await startKafkaContainers(
    nodes.map((n, i) => ({ port: n.port, properties: serverProperties(n, '', join(dir, `data-${i}`), size) })),
    clusterId(),
  ).catch(async (err: unknown) => {
    await rm(dir, { recursive: true, force: true });
    throw err;
  });
  return {
    brokers: cluster.brokers,
    secureBrokers: [],
    dir,
    startupMs: Date.now() - t0,
    logFile: (i) => cluster.logHint(i),
    stopBroker: (i) => cluster.stopBroker(i),
    startBroker: (i) => cluster.startBroker(i),
    kill9Broker: (i) => cluster.kill9Broker(i),
    dumpLog: (i, topic, partition) => cluster.dumpLog(i, topic, partition),
    produceWithJava: (topic, lines, codec) => cluster.produceWithJava(topic, lines, codec),
    async stop() {
      await cluster.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export async function startKafka(opts: { brokers: 1 | 3; secure?: SecureListener }, attempt = 1): Promise<KafkaCluster> {
  const t0 = Date.now();
  if (dockerEngineReachable()) {
    if (opts.secure !== undefined) throw new Error('a SASL_SSL listener needs the local Kafka jars (not supported with testcontainers)');
    return startKafkaInDocker(opts.brokers, t0);
  }
  const { libs, missing } = resolveLibs();
  if (libs === undefined) throw new Error(`cannot start Kafka: ${missing ?? 'unknown reason'}`);
  const size = opts.brokers;
  const dir = await mkdtemp(join(tmpdir(), 'qoe-kafka-'));
  const nodes: Node[] = [];
  for (let i = 0; i < size; i++) {
    nodes.push({
      id: i + 1,
      port: await freePort(),
      controllerPort: await freePort(),
      config: join(dir, `broker-${i}.properties`),
      log: join(dir, `broker-${i}.log`),
      ...(opts.secure === undefined ? {} : { securePort: await freePort() }),
    });
  }
  const voters = nodes.map((n) => `${n.id}@127.0.0.1:${n.controllerPort}`).join(',');
  const id = clusterId();
  const secure = opts.secure;
  const keystore = join(dir, 'keystore.pem');
  if (secure !== undefined) await writeFile(keystore, secure.keystorePem, { mode: 0o600 });
  const scram = (secure?.scram512 ?? []).flatMap((u) => ['--add-scram', `SCRAM-SHA-512=[name=${u.user},password=${u.password}]`]);
  await Promise.all(
    nodes.map(async (n, i) => {
      await writeFile(n.config, serverProperties(n, voters, join(dir, `data-${i}`), size, secure === undefined ? undefined : secureProperties(n, secure, keystore)));
      await format(libs, n, id, scram);
    }),
  );

  const nodeAt = (i: number): Node => {
    const n = nodes[i];
    if (n === undefined) throw new RangeError(`no broker ${i} (cluster of ${size})`);
    return n;
  };
  const launch = (n: Node): void => {
    n.proc = spawnJava(libs, 'kafka.Kafka', [n.config], n.log);
  };
  const stopNode = async (n: Node, signal: NodeJS.Signals): Promise<void> => {
    const proc = n.proc;
    if (proc === undefined) return;
    proc.kill(signal);
    if (!(await waitExit(proc, STOP_TIMEOUT_MS))) {
      proc.kill('SIGKILL');
      await waitExit(proc, STOP_TIMEOUT_MS);
    }
    n.proc = undefined;
  };

  nodes.forEach(launch);
  try {
    await Promise.all(nodes.map((n) => waitReady(n, size)));
  } catch (err) {
    await Promise.all(nodes.map((n) => stopNode(n, 'SIGKILL')));
    // Another process took a chosen port before the broker bound it (helpers/ports.ts): new ports.
    if (attempt < 3 && nodes.some((n) => logSays(n.log, 'Address already in use'))) {
      console.warn(`kafka: a port was taken before a broker bound it (${nodes.map((n) => n.log).join(', ')}); starting again on new ports`);
      await rm(dir, { recursive: true, force: true });
      return startKafka(opts, attempt + 1);
    }
    console.error(`kafka startup failed; broker logs: ${nodes.map((n) => n.log).join(', ')}`);
    throw err;
  }
  const startupMs = Date.now() - t0;

  return {
    brokers: nodes.map((n) => `127.0.0.1:${n.port}`),
    secureBrokers: nodes.flatMap((n) => (n.securePort === undefined ? [] : [`127.0.0.1:${n.securePort}`])),
    dir,
    startupMs,
    logFile: (i) => nodeAt(i).log,
    stopBroker: (i) => stopNode(nodeAt(i), 'SIGTERM'),
    kill9Broker: (i) => stopNode(nodeAt(i), 'SIGKILL'),
    async dumpLog(i, topic, partition) {
      nodeAt(i);
      const dirOf = join(dir, `data-${i}`, `${topic}-${partition}`);
      const files = readdirSync(dirOf).filter((f) => f.endsWith('.log')).sort().map((f) => join(dirOf, f));
      const r = spawnSync('java', javaArgs(libs, 'org.apache.kafka.tools.DumpLogSegments', ['--deep-iteration', '--print-data-log', '--files', files.join(',')]), { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
      if (r.status !== 0) throw new Error(`DumpLogSegments exited with ${r.status}: ${r.stderr}`);
      return r.stdout;
    },
    async produceWithJava(topic, lines, codec) {
      const args = ['--bootstrap-server', `127.0.0.1:${nodeAt(0).port}`, '--topic', topic, '--compression-codec', codec, '--command-property', 'acks=all'];
      const r = spawnSync('java', javaArgs(libs, 'org.apache.kafka.tools.ConsoleProducer', args), { input: `${lines.join('\n')}\n`, encoding: 'utf8', timeout: 60_000 });
      if (r.status !== 0) throw new Error(`ConsoleProducer exited with ${r.status}: ${r.stderr}`);
    },
    async startBroker(i) {
      const n = nodeAt(i);
      if (n.proc !== undefined) return;
      launch(n);
      await waitReady(n, 1);
    },
    async stop() {
      // The data is thrown away: no controlled shutdown needed.
      await Promise.all(nodes.map((n) => stopNode(n, 'SIGKILL')));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
