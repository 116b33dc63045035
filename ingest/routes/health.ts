/** Liveness and readiness probes. */
import type { FastifyPluginAsync } from 'fastify';
import { httpError } from '../http-errors.js';
import { errorBodySchema, statusBodySchema } from './response-schemas.js';

export function healthRoutes(deps: { isReady(): boolean }): FastifyPluginAsync {
  return async function healthRoutesPlugin(app) {
    app.get('/healthz', { schema: { summary: 'Liveness: 200 while the process runs', response: { 200: statusBodySchema } } }, async function healthz() {
      return { status: 'ok' };
    });
    app.get(
      '/readyz',
      { schema: { summary: 'Readiness: 200 when the app can accept traffic, else 503', response: { 200: statusBodySchema, 503: errorBodySchema } } },
      async function readyz(_request, reply) {
        if (deps.isReady()) return { status: 'ready' };
        const out = httpError('QOE_ERR_NOT_READY');
        return reply.code(503).header('Retry-After', '1').send(out.body);
      },
    );
  };
}
