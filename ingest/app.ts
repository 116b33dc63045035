/**
 * buildApp(deps): the ingest HTTP app. It never listens by itself (main.ts does), so tests use
 * inject() or listen({ port: 0 }). Routes: POST /v1/beacons, GET /healthz, GET /readyz,
 * GET /openapi.json, plus whatever `plugins` register (documented in /openapi.json too).
 */
import cors from '@fastify/cors';
import swagger from '@fastify/swagger';
import fastify, {
  LogController,
  type FastifyInstance,
  type FastifyPluginAsync,
  type RawReplyDefaultExpression,
  type RawRequestDefaultExpression,
  type RawServerDefault,
} from 'fastify';
import type { Config } from '../lib/config.js';
import type { Logger } from '../lib/logger.js';
import type { SessionEvent } from '../schemas/events.js';
import { httpError, toHttpError } from './http-errors.js';
import { beaconRoutes, type BeaconRouteDeps } from './routes/beacons.js';
import { healthRoutes } from './routes/health.js';
import { createBeaconValidators } from './validate.js';

export { MAX_EVENTS_PER_BATCH } from './beacon-schema.js';

export interface AppDeps {
  http: Config['http'];
  log: Logger;
  /** Key of the client IP hash (Config['privacy']['ipHashSecret']). */
  ipHashSecret: string;
  /** Resolves once the events are durable on the bus; a retriable QoeError means "try again later". Absent: no ingest routes. */
  publish?(events: SessionEvent[]): Promise<void>;
  isReady(): boolean;
  /** Routes other modules contribute (e.g. GET /v1/metrics); registered after the ingest routes. */
  plugins?: FastifyPluginAsync[];
  /** Counts beacon events by outcome (for /metrics). */
  onOutcome?: BeaconRouteDeps['onOutcome'];
  /** Server clock for receivedAtMs. Default Date.now. */
  now?: () => number;
}

export type IngestApp = FastifyInstance<RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression, Logger>;

export function buildApp(deps: AppDeps): IngestApp {
  const { http } = deps;
  const app = fastify({
    loggerInstance: deps.log.child({ component: 'ingest-http' }),
    // Per-request logs would be per-beacon logs: counters belong in metrics, not in the log.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: http.bodyLimitBytes,
    trustProxy: http.trustProxy,
  });

  // navigator.sendBeacon(url, string) sends text/plain (a CORS-safelisted type, so no preflight):
  // parse it as JSON, with the same prototype-poisoning protection as application/json.
  app.removeContentTypeParser('text/plain');
  app.addContentTypeParser('text/plain', { parseAs: 'string' }, app.getDefaultJsonParser('error', 'error'));

  app.setErrorHandler(function ingestErrorHandler(err, request, reply) {
    const out = toHttpError(err, { bodyLimitBytes: http.bodyLimitBytes });
    if (out.status >= 500) request.log.error({ err }, 'request failed');
    if (out.retryAfterS !== undefined) void reply.header('Retry-After', String(out.retryAfterS));
    return reply.code(out.status).send(out.body);
  });
  app.setNotFoundHandler(function notFound(_request, reply) {
    const out = httpError('QOE_ERR_NOT_FOUND');
    return reply.code(out.status).send(out.body);
  });

  void app.register(cors, {
    origin: http.corsOrigins === '*' ? '*' : [...http.corsOrigins],
    methods: ['GET', 'HEAD', 'POST'],
    allowedHeaders: ['Content-Type'],
    maxAge: 600,
  });
  // Registered before any route so that its onRoute hook sees all of them, plugins' included.
  void app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'qoe-stream', version: '0.1.0', description: 'Real-time video QoE analytics' },
    },
  });

  // Without publish() this process does not run the ingest role: health, metrics and plugins only
  // (and no beacon validators: compiling them is ~0.2 s of CPU at every start).
  const publish = deps.publish;
  if (publish) {
    void app.register(
      beaconRoutes({ validators: createBeaconValidators(), ipHashSecret: deps.ipHashSecret, now: deps.now ?? Date.now, publish: (events) => publish(events), onOutcome: deps.onOutcome }),
    );
  }
  void app.register(healthRoutes({ isReady: () => deps.isReady() }));
  for (const plugin of deps.plugins ?? []) void app.register(plugin);

  app.get('/openapi.json', { schema: { hide: true } }, async function openapi() {
    return app.swagger();
  });
  return app;
}
