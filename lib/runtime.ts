import type { Config } from './config.js';
import type { Logger } from './logger.js';
import type { Bus } from './bus/types.js';
import type { Store } from './store/types.js';
import { TOPICS } from './bus/topics.js';
import { createMemoryBus, type MemoryBus } from './bus/memory.js';
import { createKafkaBus } from './bus/kafka.js';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { createStore } from './store/index.js';
import { buildApp, type IngestApp } from '../ingest/app.js';
import { encodeSessionEvent, sessionEventCodec } from '../schemas/codec.js';
import { windowMetricsCodec } from '../processors/metrics-record.js';
import { decisionCodec } from '../steering/codec.js';
import { createSchemaRegistryClient } from './registry/client.js';
import { createConfluentFraming, withConfluentFraming, type ConfluentFraming } from './registry/wire.js';
import type { SessionEvent } from '../schemas/events.js';
import { createProcessor, type Processor } from '../processors/processor.js';
import { createSink, type Sink } from '../processors/sink.js';
import { createFileCheckpointStore } from '../processors/snapshot.js';
import { metricsRoute } from '../query/route.js';
import { cmcdRoutes } from '../ingest/cmcd/route.js';
import { livePage } from '../live/page.js';
import { createSteeringService, createSteeringStream, steeringRoutes, type SteeringService } from '../steering/index.js';
import { createDetectorRunner, type DetectorRunner } from '../steering/detector-runner.js';
import { DETECTOR_METRICS } from '../steering/detector/index.js';
import { join } from 'node:path';
import { createTelemetry, telemetryRoute, type Telemetry } from './telemetry.js';
import { CONSUMER_GROUPS } from './bus/topics.js';

/**
 * The composition root shared by `npm start` (main.ts) and the end-to-end tests: builds the bus and
 * the store the configuration names, starts the roles it asks for, and stops them in drain order.
 */
export interface Runtime {
  url: string;
  app: IngestApp;
  bus: Bus;
  store: Store;
  processor: Processor | undefined;
  sink: Sink | undefined;
  telemetry: Telemetry;
  steering: SteeringService | undefined;
  detector: DetectorRunner | undefined;
  /** Waits until every record on the bus is processed and stored. */
  drain(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export interface RuntimeOptions {
  now?: () => number;
  bus?: Bus;
}

async function waitFor(what: string, cond: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function startRuntime(config: Config, log: Logger, opts: RuntimeOptions = {}): Promise<Runtime> {
  const now = opts.now ?? Date.now;
  const telemetry = createTelemetry();
  const offsetsFile = join(config.dataDir, 'bus-offsets.json');
  // Before any bus exists: with a registry configured, nothing is written until every topic's schema has its id.
  const framing = config.schemaRegistry.url === '' ? undefined : await confluentFraming(config.schemaRegistry.url, log);
  const memoryBus: MemoryBus | undefined = opts.bus || config.bus.kind === 'kafka' ? undefined : createMemoryBus({
    maxBacklog: config.bus.maxBacklog, now, logStartOffsets: await readOffsets(offsetsFile),
    onError: (err, ctx) => log.warn({ err, ...ctx }, 'bus handler failed'),
  });
  const rawBus = opts.bus ?? memoryBus ?? createKafkaBus({
    // 10 s: a crashed member's partitions move within ~10 s (kafkajs's 30 s default doubles recovery time).
    brokers: config.bus.brokers, clientId: 'qoe-stream', log, sessionTimeoutMs: 10_000, heartbeatIntervalMs: 1000,
    compression: config.bus.compression, security: config.bus.security,
  });
  const bus = framing === undefined ? rawBus : withConfluentFraming(rawBus, framing);
  const p = config.bus.partitions;
  await bus.createTopics([
    { topic: TOPICS.beacons, partitions: p },
    { topic: TOPICS.beaconsDlq, partitions: p },
    { topic: TOPICS.metrics, partitions: p },
    // Processor state changelog (processors/changelog.ts): partition p holds input partition p's state.
    ...(bus.kind === 'kafka' ? [{ topic: TOPICS.processorState, partitions: p, config: { 'cleanup.policy': 'compact', 'segment.ms': '600000' } }] : []),
  ]);
  const store = await createStore(config.store, log.child({ component: 'store' }));
  let processor: Processor | undefined;
  let sink: Sink | undefined;
  if (config.roles.has('processor')) {
    processor = createProcessor({
      bus, now, log: log.child({ component: 'processor' }),
      settings: config.processor,
      commitIntervalMs: config.processor.commitIntervalMs,
      snapshotIntervalMs: config.processor.snapshotIntervalMs,
      fetch: { minBytes: config.processor.fetchMinBytes, maxWaitMs: config.processor.fetchMaxWaitMs },
      checkpoints: config.bus.kind === 'memory' ? createFileCheckpointStore(join(config.dataDir, 'checkpoints')) : undefined,
      onOutcome: (outcome, n) => telemetry.processorEvents.inc({ outcome }, n),
      onCommit: (c) => {
        telemetry.processorCommitSeconds.observe(c.seconds);
        telemetry.processorWindowRows.inc(c.windowRows);
        telemetry.processorChangelogRecords.inc(c.changelogRecords);
        telemetry.processorChangelogBytes.inc(c.changelogBytes);
      },
      onRestore: (c) => telemetry.processorRestoreSeconds.observe(c.seconds),
    });
    await processor.start();
  }
  if (config.roles.has('sink')) {
    sink = createSink({ bus, store, log: log.child({ component: 'sink' }), batchRows: config.sink.batchRows, flushMs: config.sink.flushMs,
      onInsert: (table, rows, ms) => {
        telemetry.sinkRows.inc({ table }, rows);
        telemetry.sinkInsertSeconds.observe({ table }, ms / 1000);
      },
      onRollupRepair: (table) => telemetry.sinkRollupRepairs.inc({ table }),
    });
    await sink.start();
  }
  // The detector role owns steering: decisions, their WebSocket feed and the content-steering manifests.
  let steering: SteeringService | undefined;
  if (config.roles.has('detector')) {
    steering = createSteeringService({ bus, store, log: log.child({ component: 'steering' }), now, config: config.steering });
    await steering.start();
  }
  let detector: DetectorRunner | undefined;
  if (steering && config.steering.neutralPriority.length === 0) {
    log.warn('detector off: set QOE_STEERING_NEUTRAL to the CDNs it may steer between');
  } else if (steering) {
    const d = config.detector;
    const metrics = d.minVolume === null ? undefined : Object.fromEntries(DETECTOR_METRICS.map((m) => [m, { minVolume: d.minVolume ?? 0 }]));
    detector = createDetectorRunner({
      bus, steering, now, log: log.child({ component: 'detector' }),
      onDecision: (action) => telemetry.steeringDecisions.inc({ action }),
      config: {
        windowMs: config.processor.windowMs,
        neutralPriority: [...config.steering.neutralPriority],
        asnScopes: d.asnScopes,
        minConcurrentSessions: d.minConcurrentSessions,
        minHistoryWindows: d.minHistoryWindows,
        spanWindows: d.spanWindows,
        maxRunWindows: Math.max(60, d.spanWindows),
        persistenceK: d.persistenceK,
        persistenceM: d.persistenceM,
        cooldownMs: d.cooldownMs,
        recoveryWindows: d.recoveryWindows,
        ...(metrics && { metrics }),
      },
    });
    await detector.start();
  }
  const steeringStream = steering ? createSteeringStream(steering) : undefined;

  async function beforeScrape(): Promise<void> {
    if (processor) {
      telemetry.busLag.set({ group: CONSUMER_GROUPS.processor }, await processor.lag());
      const wm = processor.watermarkMs();
      if (Number.isFinite(wm)) telemetry.watermarkDelay.set((now() - wm) / 1000);
      let sessions = 0;
      for (const ps of processor.partitions().values()) sessions += ps.sessions.size;
      telemetry.openSessions.set(sessions);
    }
    if (sink) telemetry.busLag.set({ group: CONSUMER_GROUPS.sink }, await sink.lag());
    if (steeringStream) telemetry.steeringSubscribers.set(steeringStream.stats().subscribers);
  }

  // Every role serves health, readiness and /metrics; the ingest role adds the beacon routes.
  let ready = false;
  const producer = config.roles.has('ingest') ? bus.producer() : undefined;
  const publish = producer && ((events: SessionEvent[]) => producer.send(TOPICS.beacons, events.map((e) => ({ key: e.sessionId, value: encodeSessionEvent(e) }))));
  const plugins = [
    metricsRoute({ store, windowMs: config.processor.windowMs, windowDims: config.processor.windowDims, now }),
    telemetryRoute(telemetry, beforeScrape),
    livePage({ store, windowMs: config.processor.windowMs, now, log: log.child({ component: 'live' }) }),
  ];
  if (steering && steeringStream) plugins.push(steeringRoutes(steering), steeringStream.plugin);
  if (publish) {
    plugins.push(cmcdRoutes({
      publish: async (events) => {
        await publish(events);
        telemetry.ingestEvents.inc({ outcome: 'accepted' }, events.length);
      },
      now, ipHashSecret: config.privacy.ipHashSecret, log: log.child({ component: 'cmcd' }), maxBodyBytes: config.http.bodyLimitBytes,
      // The client's country as the CDN edge reports it: the same header steering scopes by.
      countryHeader: config.steering.scopeHeader,
    }));
  }
  const app: IngestApp = buildApp({
    http: config.http, log, ipHashSecret: config.privacy.ipHashSecret, now,
    publish,
    onOutcome: (outcome, n) => telemetry.ingestEvents.inc({ outcome }, n),
    isReady: () => ready,
    plugins,
  });
  const url = await app.listen({ port: config.http.port, host: config.http.host });
  ready = true;

  async function drain(timeoutMs = 60_000): Promise<void> {
    if (processor) await waitFor('processor to drain', async () => (await processor!.lag()) === 0, timeoutMs);
    if (sink) {
      await waitFor('sink to drain', async () => (await sink!.lag()) === 0, timeoutMs);
      await sink.flush();
    }
  }

  return {
    url, app, bus, store, processor, sink, telemetry, steering, detector, drain,
    async stop() {
      ready = false;
      await app.close();
      await detector?.stop();
      await steering?.stop();
      // Drain order: nothing new comes in, the processor finishes the bus and checkpoints, the sink stores the rest.
      if (processor) {
        await waitFor('processor to drain', async () => (await processor!.lag()) === 0, 30_000).catch((err: unknown) => log.warn({ err }, 'processor did not drain'));
        await processor.stop();
      }
      if (sink) {
        await waitFor('sink to drain', async () => (await sink!.lag()) === 0, 30_000).catch((err: unknown) => log.warn({ err }, 'sink did not drain'));
        await sink.stop();
      }
      if (memoryBus) await saveOffsets(offsetsFile, memoryBus);
      await bus.close();
      await store.close();
    },
  };
}

/** Registers the value schema of every Avro topic (retrying while the registry is unreachable). */
function confluentFraming(url: string, log: Logger): Promise<ConfluentFraming> {
  return createConfluentFraming({
    client: createSchemaRegistryClient({ url }),
    topics: { [TOPICS.beacons]: sessionEventCodec, [TOPICS.metrics]: windowMetricsCodec, [TOPICS.steering]: decisionCodec },
    log: log.child({ component: 'schema-registry' }),
  });
}

/** Offsets of the embedded bus survive a restart, so downstream (src_partition, src_offset) stay unique. */
async function readOffsets(file: string): Promise<Record<string, number[]> | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as Record<string, number[]>;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function saveOffsets(file: string, bus: MemoryBus): Promise<void> {
  const out: Record<string, number[]> = {};
  for (const s of bus.stats()) (out[s.topic] ??= [])[s.partition] = s.highWatermark;
  await mkdir(join(file, '..'), { recursive: true });
  await writeFile(file, JSON.stringify(out));
}
