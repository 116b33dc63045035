/**
 * HTTP routes of the steering service, as a fastify plugin for buildApp({ plugins }):
 *   GET  /v1/steering/hls, /v1/steering/dash   content-steering manifests (no auth: players call them)
 *   GET  /v1/steering/decisions                 current decisions (read token)
 *   GET  /v1/steering/kill-switch               kill switch state (read token)
 *   POST /v1/steering/kill-switch {enabled}     flip it (admin token)
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { createAuthorizer, tokenFrom, type AuthLevel } from './auth.js';
import { DECISION_SCHEMA_VERSION } from './decision.js';
import { STEERING_ERRORS, steeringErrorBody, type SteeringErrorCode } from './errors.js';
import { currentPathway, reloadUri, resolveScope, steeringManifest, type ManifestKind, type QueryValue } from './manifest.js';
import type { SteeringService } from './service.js';

/**
 * `no-store`: a decision must reach players within one TTL; a cached manifest would add up to another
 * TTL, and the answer varies by an edge header that shared caches key poorly. Players re-ask every TTL anyway.
 */
export const MANIFEST_CACHE_CONTROL = 'no-store';

function sendError(reply: FastifyReply, code: SteeringErrorCode, message?: string): FastifyReply {
  if (code === 'QOE_ERR_STEERING_UNAUTHORIZED') void reply.header('WWW-Authenticate', 'Bearer realm="qoe-steering"');
  return reply.code(STEERING_ERRORS[code].status).send(steeringErrorBody(code, message));
}

function queryParams(request: FastifyRequest): URLSearchParams {
  const q = request.url.indexOf('?');
  return new URLSearchParams(q < 0 ? '' : request.url.slice(q + 1));
}

export function steeringRoutes(service: SteeringService): FastifyPluginAsync {
  const { config } = service;
  const auth = createAuthorizer(config);

  /** Replies 401/403 and returns false when the request's token is below `need`. */
  function allowed(request: FastifyRequest, reply: FastifyReply, need: Exclude<AuthLevel, 'none'>): boolean {
    const level = auth.level(tokenFrom(request.headers, queryParams(request)));
    if (level === 'none') {
      void sendError(reply, 'QOE_ERR_STEERING_UNAUTHORIZED');
      return false;
    }
    if (need === 'admin' && level !== 'admin') {
      void sendError(reply, 'QOE_ERR_STEERING_FORBIDDEN');
      return false;
    }
    return true;
  }

  function manifest(kind: ManifestKind) {
    return async function steeringManifestRoute(request: FastifyRequest, reply: FastifyReply) {
      const query = request.query as Record<string, QueryValue>;
      const scope = resolveScope(request.headers[config.scopeHeader], query);
      const body = steeringManifest({
        kind,
        effective: scope === undefined ? undefined : service.lookup(scope),
        config,
        current: currentPathway(kind, query),
        reloadUri: reloadUri(kind, request.url),
      });
      return reply.header('Cache-Control', MANIFEST_CACHE_CONTROL).type('application/json').send(body);
    };
  }

  return async function steeringRoutesPlugin(app) {
    const tags = ['steering'];
    app.get('/v1/steering/hls', { schema: { tags, summary: 'HLS content-steering manifest for the client scope' } }, manifest('hls'));
    app.get('/v1/steering/dash', { schema: { tags, summary: 'DASH content-steering manifest for the client scope' } }, manifest('dash'));

    app.get('/v1/steering/decisions', { schema: { tags, summary: 'Current steering decisions (read token)' } }, async function decisions(request, reply) {
      if (!allowed(request, reply, 'read')) return reply;
      return { version: DECISION_SCHEMA_VERSION, seq: service.lastSeq(), killSwitch: service.killSwitch().enabled, decisions: service.current() };
    });

    app.get('/v1/steering/kill-switch', { schema: { tags, summary: 'Kill switch state (read token)' } }, async function killSwitchState(request, reply) {
      if (!allowed(request, reply, 'read')) return reply;
      return service.killSwitch();
    });

    app.post('/v1/steering/kill-switch', { schema: { tags, summary: 'Turn the kill switch on or off (admin token)' } }, async function killSwitch(request, reply) {
      if (!allowed(request, reply, 'admin')) return reply;
      const body = request.body as { enabled?: unknown; actor?: unknown } | null | undefined;
      if (typeof body !== 'object' || body === null || typeof body.enabled !== 'boolean') {
        return sendError(reply, 'QOE_ERR_STEERING_BAD_REQUEST', 'body must be {"enabled": true|false, "actor"?: string}');
      }
      const actor = typeof body.actor === 'string' && body.actor.length > 0 ? body.actor.slice(0, 128) : 'admin-api';
      const issued = service.setKillSwitch(body.enabled, actor);
      return { ...service.killSwitch(), issued: issued.length };
    });
  };
}
