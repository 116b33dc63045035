/**
 * CMCD v2 ingest over HTTP (registered by the app through `plugins`):
 *  - POST /v1/cmcd          event mode: body = one record per line (application/cmcd, text/cmcd, text/plain)
 *  - GET|POST /v1/cmcd/request  request mode forwarded by CDNs or log shippers: `CMCD=` query
 *    parameter, `CMCD-Request|Object|Status|Session` headers, or (POST) one record per line.
 * A bad record is counted and skipped; its batch is still accepted (204, `CMCD-Rejected: n`).
 */
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { isQoeError } from '../../lib/errors.js';
import type { Logger } from '../../lib/logger.js';
import type { SessionEvent } from '../../schemas/events.js';
import { clientHash } from '../client-hash.js';
import { httpError, toHttpError } from '../http-errors.js';
import { errorBodySchema } from '../routes/response-schemas.js';
import { parseCmcdBody, parseCmcdRecord, type CmcdLineResult, type CmcdRecord } from './parse.js';
import { createCmcdTranslationState, DEFAULT_MAX_SESSIONS } from './state.js';
import { emptyCmcdCounters, translateCmcdRecords, type CmcdCounters, type CmcdMode, type CmcdTranslateContext } from './translate.js';
import { countryFromHeader, dimsFromUserAgent } from './ua.js';

export const CMCD_CONTENT_TYPES = ['application/cmcd', 'text/cmcd', 'text/plain'] as const;
/** The request-mode header shards of CTA-5004-B, joined into one record. */
export const CMCD_HEADERS = ['cmcd-request', 'cmcd-object', 'cmcd-status', 'cmcd-session'] as const;
/** At most this many rejected records are listed in a 400 body. */
const MAX_LISTED_REJECTIONS = 20;

export interface CmcdRouteDeps {
  /** Resolves once the events are durable on the bus; a retriable QoeError means "try again later". */
  publish(events: SessionEvent[]): Promise<void>;
  /** Server clock for receivedAtMs (and the time of records without `ts`). */
  now(): number;
  ipHashSecret: string;
  log: Logger;
  /** Header holding the viewer's country set by the edge, e.g. 'cloudfront-viewer-country'. Unset = no country. */
  countryHeader?: string;
  /** Largest body accepted on these routes (bytes). */
  maxBodyBytes: number;
  /** Bound of the per-session translation state (LRU). Default DEFAULT_MAX_SESSIONS. */
  maxSessions?: number;
  /** Custom CMCD keys copied into custom1..custom3, e.g. { custom1: 'com.example-tier' }. */
  customDims?: CmcdTranslateContext['customDims'];
  /** Counters to add to (owned by the caller, e.g. exported as metrics). */
  counters?: CmcdCounters;
}

export interface RejectedRecord {
  line: number;
  code: 'syntax' | 'too_long' | 'missing_sid';
  message: string;
}

function stringBody(request: FastifyRequest): string | undefined {
  if (request.body === undefined || request.body === null) return '';
  return typeof request.body === 'string' ? request.body : undefined;
}

function headerRecord(request: FastifyRequest): string {
  const shards: string[] = [];
  for (const name of CMCD_HEADERS) {
    const v = request.headers[name];
    const text = (Array.isArray(v) ? v.join(',') : (v ?? '')).trim();
    if (text !== '') shards.push(text);
  }
  return shards.join(',');
}

function queryRecords(request: FastifyRequest): string[] {
  const q = (request.query ?? {}) as Record<string, unknown>;
  const v = q['CMCD'];
  const values = Array.isArray(v) ? v : [v];
  return values.filter((x): x is string => typeof x === 'string' && x.trim() !== '').map((x) => x.trim());
}

export function cmcdRoutes(deps: CmcdRouteDeps): FastifyPluginAsync {
  const state = createCmcdTranslationState(deps.maxSessions ?? DEFAULT_MAX_SESSIONS);
  const counters = deps.counters ?? emptyCmcdCounters();
  const log = deps.log.child({ component: 'ingest-cmcd' });

  async function ingest(request: FastifyRequest, reply: FastifyReply, mode: CmcdMode, lines: CmcdLineResult[]): Promise<FastifyReply> {
    const receivedAtMs = deps.now();
    const rejected: RejectedRecord[] = [];
    const records: CmcdRecord[] = [];
    const recordLines: number[] = [];
    let ignored = 0;
    for (const l of lines) {
      if (l.ok) {
        records.push(l.record);
        recordLines.push(l.line);
      } else if (l.code === 'unsupported_version') ignored += 1; // "ignored whole" (CTA-5004-B): not an error
      else rejected.push({ line: l.line, code: l.code, message: l.message });
    }
    const ctx: CmcdTranslateContext = {
      mode,
      receivedAtMs,
      clientHash: clientHash(deps.ipHashSecret, request.ip),
      requestDims: {
        ...dimsFromUserAgent(request.headers['user-agent']),
        country: deps.countryHeader === undefined ? '' : countryFromHeader(request.headers[deps.countryHeader.toLowerCase()]),
      },
    };
    if (deps.customDims !== undefined) ctx.customDims = deps.customDims;
    const { events, dropped } = translateCmcdRecords(state, records, ctx, counters);
    for (const d of dropped) {
      if (d.reason === 'duplicate') ignored += 1;
      else rejected.push({ line: recordLines[d.index] ?? 0, code: 'missing_sid', message: 'record has no sid' });
    }
    if (events.length === 0 && ignored === 0) {
      const out = rejected.length === 0 ? httpError('QOE_ERR_INGEST_VALIDATION', 'no CMCD record in the request') : httpError('QOE_ERR_INGEST_VALIDATION', 'every CMCD record was rejected', {
        details: { rejected: rejected.slice(0, MAX_LISTED_REJECTIONS) },
      });
      return reply.code(out.status).send(out.body);
    }
    if (events.length > 0) {
      try {
        await deps.publish(events);
      } catch (err) {
        if (isQoeError(err) && err.retriable) {
          log.debug({ err }, 'publish refused, answering 503');
          const out = httpError('QOE_ERR_INGEST_OVERLOADED', undefined, { details: { cause: err.code } });
          return reply.code(out.status).header('Retry-After', String(out.retryAfterS ?? 1)).send(out.body);
        }
        throw err;
      }
    }
    if (rejected.length > 0) void reply.header('CMCD-Rejected', String(rejected.length));
    if (ignored > 0) void reply.header('CMCD-Ignored', String(ignored));
    return reply.code(204).send();
  }

  return async function cmcdRoutesPlugin(app: FastifyInstance) {
    // Encapsulated: these parsers (text/plain as a string, not JSON) apply to this plugin's routes only.
    app.removeContentTypeParser('text/plain');
    app.addContentTypeParser([...CMCD_CONTENT_TYPES], { parseAs: 'string', bodyLimit: deps.maxBodyBytes }, function cmcdBody(_req, body, done) {
      done(null, body);
    });
    app.setErrorHandler(function cmcdErrorHandler(err, request, reply) {
      const out = toHttpError(err, { bodyLimitBytes: deps.maxBodyBytes });
      if (out.body.error.code === 'QOE_ERR_INGEST_UNSUPPORTED_MEDIA_TYPE') out.body.error.message = `unsupported content type (use ${CMCD_CONTENT_TYPES.join(', ')})`;
      if (out.status >= 500) request.log.error({ err }, 'request failed');
      if (out.retryAfterS !== undefined) void reply.header('Retry-After', String(out.retryAfterS));
      return reply.code(out.status).send(out.body);
    });
    const errors = { 400: errorBodySchema, 413: errorBodySchema, 415: errorBodySchema, 503: errorBodySchema };
    const noContent = { type: 'null', description: 'accepted; CMCD-Rejected / CMCD-Ignored headers count skipped records' };

    app.post(
      '/v1/cmcd',
      {
        bodyLimit: deps.maxBodyBytes,
        schema: {
          summary: 'Ingest CMCD v2 event-mode reports',
          description: 'Body: one CMCD record per line (CTA-5004-B event mode). Bad records are skipped and counted in CMCD-Rejected; 400 only when every record is bad.',
          consumes: [...CMCD_CONTENT_TYPES],
          response: { 204: noContent, ...errors },
        },
      },
      async function postCmcd(request, reply) {
        const body = stringBody(request);
        if (body === undefined) return reply.code(415).send(unsupported().body);
        return ingest(request, reply, 'event', parseCmcdBody(body));
      },
    );

    async function requestMode(request: FastifyRequest, reply: FastifyReply) {
      const body = stringBody(request);
      if (body === undefined) return reply.code(415).send(unsupported().body);
      const lines: CmcdLineResult[] = [];
      for (const q of queryRecords(request)) lines.push({ ...parseCmcdRecord(q), line: 0 });
      const fromHeaders = headerRecord(request);
      if (fromHeaders !== '') lines.push({ ...parseCmcdRecord(fromHeaders), line: 0 });
      lines.push(...parseCmcdBody(body));
      return ingest(request, reply, 'request', lines);
    }
    const requestSchema = {
      summary: 'Ingest CMCD request-mode data forwarded by a CDN or log shipper',
      description:
        'One record from the URL-encoded `CMCD` query parameter, one from the CMCD-Request/-Object/-Status/-Session headers (joined), ' +
        'and (POST) one per body line. Request-mode records count as requests (with `rc`, `ttfb`, `ttlb` when the forwarder adds them).',
      response: { 204: noContent, ...errors },
    };
    app.get('/v1/cmcd/request', { schema: requestSchema }, requestMode);
    app.post('/v1/cmcd/request', { bodyLimit: deps.maxBodyBytes, schema: { ...requestSchema, consumes: [...CMCD_CONTENT_TYPES] } }, requestMode);
  };
}

function unsupported() {
  return httpError('QOE_ERR_INGEST_UNSUPPORTED_MEDIA_TYPE', `unsupported content type (use ${CMCD_CONTENT_TYPES.join(', ')})`);
}
