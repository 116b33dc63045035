// First: kafkajs patched before anything loads it, as the Kafka bus requires (lib/bus/kafkajs-patches.ts).
import '../../lib/bus/kafkajs-patches.js';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import type { StartedNetwork, StartedTestContainer } from 'testcontainers';
import { IMAGES } from '../../lib/images.js';

/**
 * The Docker path of the service helpers: when a Docker engine is reachable, startKafka() and
 * startClickHouseServer() run the images of lib/images.ts through testcontainers instead of the
 * local jars / Debian binary, so users with Docker run the same suite. testcontainers is imported
 * dynamically, only once an engine was detected: the non-Docker path never loads it.
 *
 * QOE_TESTCONTAINERS=0 turns the Docker path off; =1 forces it (no detection).
 */

let detected: boolean | undefined;

/** A Docker engine answers: DOCKER_HOST is set, or /var/run/docker.sock answers GET /_ping. Cached. */
export function dockerEngineReachable(): boolean {
  if (detected !== undefined) return detected;
  const flag = process.env.QOE_TESTCONTAINERS;
  if (flag === '0' || flag === '1') return (detected = flag === '1');
  const host = process.env.DOCKER_HOST;
  if (host !== undefined && host !== '') return (detected = true);
  const socket = '/var/run/docker.sock';
  if (!existsSync(socket)) return (detected = false);
  // Synchronous because the skip decision is made when a test file loads; only runs when the socket exists.
  const ping = `require('node:http').get({socketPath:${JSON.stringify(socket)},path:'/_ping',timeout:2000},(r)=>process.exit(r.statusCode===200?0:1)).on('error',()=>process.exit(1)).on('timeout',()=>process.exit(1))`;
  return (detected = spawnSync(process.execPath, ['-e', ping], { stdio: 'ignore', timeout: 5000 }).status === 0);
}

/** What the Kafka helper needs to know about one broker to run it in a container. */
export interface ContainerBroker {
  /** The host port, bound to the same port in the container (so it can be advertised as is). */
  port: number;
  /** server.properties as the jar path writes it; listener lines are replaced here. */
  properties: string;
}

export interface ContainerKafka {
  brokers: string[];
  stopBroker(i: number): Promise<void>;
  startBroker(i: number): Promise<void>;
  kill9Broker(i: number): Promise<void>;
  /** Where broker i's output is: `docker logs <container>`. */
  logHint(i: number): string;
  dumpLog(i: number, topic: string, partition: number): Promise<string>;
  produceWithJava(topic: string, lines: string[], codec: string): Promise<void>;
  stop(): Promise<void>;
}

const CONTROLLER_PORT = 9093;
const INTERNAL_PORT = 19092;
const alias = (i: number): string => `kafka-${i}`;

function override(properties: string, values: Record<string, string>): string {
  const lines = properties.split('\n').filter((l) => !Object.keys(values).some((k) => l.startsWith(`${k}=`)));
  return [...lines.filter((l) => l !== ''), ...Object.entries(values).map(([k, v]) => `${k}=${v}`), ''].join('\n');
}

async function waitKafkaReady(broker: string, nodeId: number, expect: number, timeoutMs: number): Promise<void> {
  const admin = new Kafka({ clientId: 'qoe-test-ready', brokers: [broker], logLevel: logLevel.NOTHING, connectionTimeout: 1000, retry: { retries: 0 } }).admin();
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      await admin.connect();
      const { brokers } = await admin.describeCluster();
      if (brokers.some((b) => b.nodeId === nodeId) && brokers.length >= expect) return;
    } catch (err) {
      last = err;
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`kafka container broker ${nodeId} not ready after ${timeoutMs} ms: ${String(last)}`);
}

/** KRaft brokers (combined mode) from IMAGES.kafka on one Docker network; format runs in the container. */
export async function startKafkaContainers(nodes: ContainerBroker[], clusterId: string): Promise<ContainerKafka> {
  const { GenericContainer, Network, getContainerRuntimeClient } = await import('testcontainers');
  const client = await getContainerRuntimeClient();
  const host = client.info.containerRuntime.host;
  const network: StartedNetwork = await new Network().start();
  const voters = nodes.map((_, i) => `${i + 1}@${alias(i)}:${CONTROLLER_PORT}`).join(',');
  const containers: StartedTestContainer[] = [];
  try {
    const started = await Promise.all(
      nodes.map((n, i) => {
        const properties = override(n.properties, {
          listeners: `PLAINTEXT://0.0.0.0:${n.port},INTERNAL://0.0.0.0:${INTERNAL_PORT},CONTROLLER://0.0.0.0:${CONTROLLER_PORT}`,
          'advertised.listeners': `PLAINTEXT://${host}:${n.port},INTERNAL://${alias(i)}:${INTERNAL_PORT}`,
          'listener.security.protocol.map': 'PLAINTEXT:PLAINTEXT,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT',
          'inter.broker.listener.name': 'INTERNAL',
          'controller.quorum.voters': voters,
          'log.dirs': '/var/lib/kafka/data',
        });
        // --ignore-formatted: a stopped and started container keeps its formatted log dir.
        const script = [
          'set -e',
          `/opt/kafka/bin/kafka-storage.sh format --ignore-formatted -t ${clusterId} -c /tmp/qoe-server.properties`,
          'exec /opt/kafka/bin/kafka-server-start.sh /tmp/qoe-server.properties',
        ].join('\n');
        return new GenericContainer(IMAGES.kafka)
          .withNetwork(network)
          .withNetworkAliases(alias(i))
          .withExposedPorts({ container: n.port, host: n.port })
          .withEnvironment({ KAFKA_HEAP_OPTS: '-Xmx512m -Xms256m' })
          .withCopyContentToContainer([{ content: properties, target: '/tmp/qoe-server.properties' }])
          .withEntrypoint(['/bin/bash', '-c', script])
          .withStartupTimeout(120_000)
          .start();
      }),
    );
    containers.push(...started);
  } catch (err) {
    await Promise.allSettled(containers.map((c) => c.stop()));
    await network.stop().catch(() => undefined);
    throw err;
  }
  const brokers = nodes.map((n) => `${host}:${n.port}`);
  await Promise.all(brokers.map((b, i) => waitKafkaReady(b, i + 1, nodes.length, 120_000)));
  const at = (i: number): StartedTestContainer => {
    const c = containers[i];
    if (c === undefined) throw new RangeError(`no broker ${i} (cluster of ${containers.length})`);
    return c;
  };
  const docker = (i: number) => client.container.getById(at(i).getId());
  return {
    brokers,
    stopBroker: async (i) => {
      await docker(i).stop({ t: 30 }).catch(() => undefined);
    },
    kill9Broker: async (i) => {
      await docker(i).kill({ signal: 'SIGKILL' }).catch(() => undefined);
    },
    async startBroker(i) {
      await docker(i).start();
      await waitKafkaReady(brokers[i] ?? '', i + 1, 1, 120_000);
    },
    logHint: (i) => `docker logs ${at(i).getName().replace(/^\//, '')}`,
    async dumpLog(i, topic, partition) {
      const files = `/var/lib/kafka/data/${topic}-${partition}/*.log`;
      const r = await at(i).exec(['bash', '-c', `/opt/kafka/bin/kafka-dump-log.sh --deep-iteration --print-data-log --files "$(ls ${files} | paste -sd,)"`]);
      if (r.exitCode !== 0) throw new Error(`kafka-dump-log exited with ${r.exitCode}: ${r.output}`);
      return r.output;
    },
    async produceWithJava(topic, lines, codec) {
      // exec has no stdin: the lines go in as base64 of one argument.
      const data = Buffer.from(`${lines.join('\n')}\n`).toString('base64');
      const r = await at(0).exec(['bash', '-c', `echo ${data} | base64 -d | /opt/kafka/bin/kafka-console-producer.sh --bootstrap-server localhost:${INTERNAL_PORT} --topic ${topic} --compression-codec ${codec} --command-property acks=all`]);
      if (r.exitCode !== 0) throw new Error(`kafka-console-producer exited with ${r.exitCode}: ${r.output}`);
    },
    async stop() {
      await Promise.allSettled(containers.map((c) => c.stop({ timeout: 0 })));
      await network.stop().catch(() => undefined);
    },
  };
}

export interface ContainerClickHouse {
  url: string;
  httpPort: number;
  dataDir: string;
  stop(): Promise<void>;
  /** docker stop, keeping the container (data, port binding) for resume(). */
  pause(): Promise<void>;
  /** docker start of the paused container; waits for /ping. */
  resume(): Promise<void>;
  running(): boolean;
}

async function pingClickHouse(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await fetch(`${url}/ping`, { signal: AbortSignal.timeout(1000) }).then((r) => r.ok, () => false);
    if (ok) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`clickhouse container did not answer ${url}/ping within ${timeoutMs} ms`);
}

/**
 * IMAGES.clickhouse with the default user open (no password) and the HTTP port bound to `httpPort`
 * on the host (fixed, so the URL survives pause/resume).
 */
export async function startClickHouseContainer(httpPort: number): Promise<ContainerClickHouse> {
  const { GenericContainer, getContainerRuntimeClient } = await import('testcontainers');
  const client = await getContainerRuntimeClient();
  const container = await new GenericContainer(IMAGES.clickhouse)
    .withEnvironment({ CLICKHOUSE_SKIP_USER_SETUP: '1', TZ: 'UTC' })
    .withExposedPorts({ container: 8123, host: httpPort })
    .withStartupTimeout(120_000)
    .start();
  const url = `http://${container.getHost()}:${httpPort}`;
  await pingClickHouse(url, 120_000);
  const docker = client.container.getById(container.getId());
  // Kept for the ClickHouseServer shape: a local directory tests may write next to the server.
  const dataDir = await mkdtemp(join(tmpdir(), 'qoe-clickhouse-container-'));
  let up = true;
  return {
    url,
    httpPort,
    dataDir,
    running: () => up,
    async pause() {
      up = false;
      await docker.stop({ t: 10 }).catch(() => undefined);
    },
    async resume() {
      await docker.start();
      await pingClickHouse(url, 120_000);
      up = true;
    },
    async stop() {
      up = false;
      await container.stop({ timeout: 0 }).catch(() => undefined);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
