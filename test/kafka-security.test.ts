import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKafkaBus } from '../lib/bus/kafka.js';
import { TOPICS } from '../lib/bus/topics.js';
import type { Bus, BusRecord, KafkaSecurity } from '../lib/bus/types.js';
import { loadConfig } from '../lib/config.js';
import { silentLogger } from '../lib/logger.js';
import { decodeSessionEvent } from '../schemas/codec.js';
import { kafkaSkipReason, startKafka, type KafkaCluster } from './helpers/kafka.js';
import { replayEnv, startTestRuntime, tempDataDir } from './helpers/runtime.js';
import { dockerEngineReachable } from './helpers/testcontainers.js';

/**
 * Kafka behind TLS and SASL, as managed services run it: a real broker with a SASL_SSL listener
 * (self-signed certificate made here with openssl; PLAIN and SCRAM-SHA-512 users), and qoe-stream
 * configured through its QOE_KAFKA_TLS* / QOE_KAFKA_SASL_* settings.
 */
function skipReason(): string | undefined {
  const kafka = kafkaSkipReason();
  if (kafka !== undefined) return kafka;
  // The SASL_SSL listener is set up on the local jars only (test/helpers/kafka.ts).
  if (dockerEngineReachable()) {
    const why = 'the SASL_SSL broker runs from the local Kafka jars, not testcontainers';
    if (process.env.QOE_REQUIRE_SERVICES === '1') throw new Error(`required: ${why} (run without a Docker engine)`);
    return why;
  }
  if (spawnSync('openssl', ['version']).status !== 0) {
    const why = 'openssl is not installed (apt-get install -y openssl): it makes the broker\'s certificate';
    if (process.env.QOE_REQUIRE_SERVICES === '1') throw new Error(`required: ${why}`);
    return why;
  }
  return undefined;
}

const skip = skipReason();
if (skip !== undefined) console.warn(`skipping Kafka security tests: ${skip}`);

const SCRAM = { user: 'qoe', password: `scram-${randomBytes(6).toString('hex')}` };
const PLAIN = { user: 'qoe-plain', password: `plain-${randomBytes(6).toString('hex')}` };

describe.skipIf(skip !== undefined)('Kafka with TLS and SASL (real broker, SASL_SSL listener)', () => {
  let cluster: KafkaCluster | undefined;
  let certDir = '';
  let caFile = '';
  const buses: Bus[] = [];

  beforeAll(async () => {
    certDir = mkdtempSync(join(tmpdir(), 'qoe-tls-'));
    const key = join(certDir, 'key.pem');
    caFile = join(certDir, 'cert.pem');
    const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', caFile, '-days', '2',
      '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`openssl failed: ${r.stderr}`);
    cluster = await startKafka({
      brokers: 1,
      secure: { keystorePem: readFileSync(key, 'utf8') + readFileSync(caFile, 'utf8'), plain: [PLAIN], scram512: [SCRAM] },
    });
  });

  afterAll(async () => {
    await Promise.allSettled(buses.map((b) => b.close()));
    await cluster?.stop();
    rmSync(certDir, { recursive: true, force: true });
  });

  const secureBrokers = (): string => (cluster as KafkaCluster).secureBrokers.join(',');

  function bus(security: KafkaSecurity): Bus {
    const b = createKafkaBus({ brokers: (cluster as KafkaCluster).secureBrokers, clientId: 'qoe-test-secure', log: silentLogger(), security, retries: 1, connectionTimeoutMs: 2000 });
    buses.push(b);
    return b;
  }

  async function readAll(b: Bus, topic: string, n: number): Promise<BusRecord[]> {
    const got: BusRecord[] = [];
    const c = b.consumer({ groupId: `g-${randomBytes(4).toString('hex')}`, topics: [topic] });
    await c.run({ eachBatch: async (batch) => void got.push(...batch.records) });
    const deadline = Date.now() + 30_000;
    while (got.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await c.close();
    return got;
  }

  it('ingest configured with QOE_KAFKA_TLS, _CA_FILE and SCRAM-SHA-512 acknowledges beacons only once Kafka has them', async () => {
    const env = {
      QOE_ROLES: 'ingest', QOE_KAFKA_BROKERS: secureBrokers(), QOE_KAFKA_TLS: 'true', QOE_KAFKA_TLS_CA_FILE: caFile,
      QOE_KAFKA_SASL_MECHANISM: 'scram-sha-512', QOE_KAFKA_SASL_USERNAME: SCRAM.user, QOE_KAFKA_SASL_PASSWORD: SCRAM.password,
    };
    const { runtime, config } = await startTestRuntime(replayEnv(tempDataDir(), env));
    try {
      const ts = Date.now() - 60_000;
      const events = [0, 1, 2].map((seq) => ({ sessionId: 'secure-1', seq, ts: ts + seq * 1000, type: seq === 0 ? 'play_request' : 'heartbeat' }));
      const res = await fetch(`${runtime.url}/v1/beacons`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ events }) });
      expect(res.status).toBe(202);
      // Read back through the same settings: the three events, in order.
      const got = await readAll(bus(config.bus.security), TOPICS.beacons, 3);
      expect(got.map((r) => decodeSessionEvent(r.value).seq)).toEqual([0, 1, 2]);
    } finally {
      await runtime.stop();
    }
  });

  it('PLAIN over TLS: topics, a send and a read', async () => {
    const b = bus({ tls: true, caPem: readFileSync(caFile, 'utf8'), sasl: { mechanism: 'plain', username: PLAIN.user, password: PLAIN.password } });
    const topic = `plain-${randomBytes(4).toString('hex')}`;
    await b.createTopics([{ topic, partitions: 1 }]);
    const p = b.producer();
    await p.send(topic, [{ key: 'k', value: Buffer.from('over TLS'), partition: 0 }]);
    await p.close();
    expect((await readAll(b, topic, 1)).map((r) => r.value.toString())).toEqual(['over TLS']);
  });

  it('refuses a wrong password, and a broker certificate no trusted CA signed', async () => {
    const wrong = bus({ tls: true, caPem: readFileSync(caFile, 'utf8'), sasl: { mechanism: 'scram-sha-512', username: SCRAM.user, password: 'not-it' } });
    await expect(wrong.createTopics([{ topic: 'never', partitions: 1 }])).rejects.toMatchObject({
      code: 'QOE_ERR_BUS_UNAVAILABLE', cause: { name: 'KafkaJSSASLAuthenticationError' },
    });
    // The system's CAs did not sign the self-signed certificate: TLS verification is on.
    const untrusted = bus({ tls: true, sasl: { mechanism: 'scram-sha-512', username: SCRAM.user, password: SCRAM.password } });
    const err = await untrusted.createTopics([{ topic: 'never', partitions: 1 }]).then(() => undefined, (e: unknown) => e);
    expect(err).toMatchObject({ code: 'QOE_ERR_BUS_UNAVAILABLE' });
    expect(JSON.stringify(err, Object.getOwnPropertyNames(err)) + String((err as { cause?: unknown }).cause)).toMatch(/self[- ]signed|certificate/i);
  });
});

describe('Kafka security settings', () => {
  it('reads TLS, the CA file and SASL from the environment; the password as is', () => {
    const dir = mkdtempSync(join(tmpdir(), 'qoe-ca-'));
    try {
      const ca = join(dir, 'ca.pem');
      spawnSync('sh', ['-c', `printf -- '-----BEGIN CERTIFICATE-----\\nAAAA\\n-----END CERTIFICATE-----\\n' > ${ca}`]);
      const c = loadConfig({ QOE_KAFKA_TLS: 'true', QOE_KAFKA_TLS_CA_FILE: ca, QOE_KAFKA_SASL_MECHANISM: 'SCRAM-SHA-256', QOE_KAFKA_SASL_USERNAME: 'u', QOE_KAFKA_SASL_PASSWORD: ' p w ' });
      expect(c.bus.security).toEqual({ tls: true, caPem: readFileSync(ca, 'utf8'), sasl: { mechanism: 'scram-sha-256', username: 'u', password: ' p w ' } });
      expect(loadConfig({}).bus.security).toEqual({ tls: false });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.each([
    [{ QOE_KAFKA_TLS_CA_FILE: '/etc/hostname' }, 'QOE_KAFKA_TLS_CA_FILE'],
    [{ QOE_KAFKA_TLS: 'true', QOE_KAFKA_TLS_CA_FILE: '/nonexistent/ca.pem' }, 'QOE_KAFKA_TLS_CA_FILE'],
    [{ QOE_KAFKA_TLS: 'true', QOE_KAFKA_TLS_CA_FILE: '/etc/hostname' }, 'QOE_KAFKA_TLS_CA_FILE'],
    [{ QOE_KAFKA_TLS: 'yes' }, 'QOE_KAFKA_TLS'],
    [{ QOE_KAFKA_SASL_MECHANISM: 'gssapi', QOE_KAFKA_SASL_USERNAME: 'u', QOE_KAFKA_SASL_PASSWORD: 'p' }, 'QOE_KAFKA_SASL_MECHANISM'],
    [{ QOE_KAFKA_SASL_MECHANISM: 'plain', QOE_KAFKA_SASL_PASSWORD: 'p' }, 'QOE_KAFKA_SASL_USERNAME'],
    [{ QOE_KAFKA_SASL_MECHANISM: 'plain', QOE_KAFKA_SASL_USERNAME: 'u' }, 'QOE_KAFKA_SASL_PASSWORD'],
    [{ QOE_KAFKA_SASL_USERNAME: 'u', QOE_KAFKA_SASL_PASSWORD: 'p' }, 'QOE_KAFKA_SASL_MECHANISM'],
  ])('fails fast on %o, naming %s', (env, name) => {
    expect(() => loadConfig(env)).toThrow(expect.objectContaining({ code: 'QOE_ERR_CONFIG_INVALID', message: expect.stringContaining(name) }));
  });
});
