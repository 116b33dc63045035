/**
 * The two servers the ingest benchmark compares, on 127.0.0.1, any free port:
 * - the real ingest app (buildApp) whose publish() encodes to Avro and appends to a real memory bus,
 *   drained by a consumer group (no-op eachBatch, auto-commit), silent logger;
 * - a bare node:http server that reads the body, JSON.parses it and answers 202 with a small JSON body.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createMemoryBus } from '../lib/bus/memory.js';
import { TOPICS } from '../lib/bus/topics.js';
import { silentLogger } from '../lib/logger.js';
import { buildApp } from '../ingest/app.js';
import { encodeSessionEvent } from '../schemas/codec.js';

export interface BenchServer {
  url: string;
  /** Events the bus consumer has received (ingest app) or events parsed (bare server). */
  events(): number;
  close(): Promise<void>;
}

export async function startIngest(): Promise<BenchServer> {
  const bus = createMemoryBus({ maxBacklog: 200_000 });
  await bus.createTopics([{ topic: TOPICS.beacons, partitions: 8 }]);
  const producer = bus.producer();
  let consumed = 0;
  const consumer = bus.consumer({ groupId: 'bench-drain', topics: [TOPICS.beacons] });
  await consumer.run({
    async eachBatch(b) {
      consumed += b.records.length;
    },
  });
  const app = buildApp({
    http: { port: 0, host: '127.0.0.1', bodyLimitBytes: 1_048_576, corsOrigins: '*', trustProxy: false },
    log: silentLogger(),
    ipHashSecret: 'bench-secret',
    publish: (events) => producer.send(TOPICS.beacons, events.map((e) => ({ key: e.sessionId, value: encodeSessionEvent(e) }))),
    isReady: () => true,
  });
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  return {
    url: `${url}/v1/beacons`,
    events: () => consumed,
    async close() {
      await app.close();
      await bus.close();
    },
  };
}

export async function startBare(): Promise<BenchServer> {
  let parsed = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { events: unknown[] };
      parsed += body.events.length;
      const out = JSON.stringify({ accepted: body.events.length, rejected: [] });
      res.writeHead(202, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(out) });
      res.end(out);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1/beacons`,
    events: () => parsed,
    close: () => new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve()))),
  };
}
