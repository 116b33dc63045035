/** POST /v1/beacons: native JSON beacons, validated per event, normalised, published. */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { isQoeError } from '../../lib/errors.js';
import type { SessionEvent } from '../../schemas/events.js';
import { beaconBatchSchema, inlineRefs, type BeaconDims, type BeaconEvent } from '../beacon-schema.js';
import { clientHash } from '../client-hash.js';
import { httpError } from '../http-errors.js';
import { normalizeEvent } from '../normalize.js';
import type { BeaconValidators } from '../validate.js';
import { acceptedBodySchema, badRequestBodySchema, errorBodySchema } from './response-schemas.js';

export interface RejectedEvent {
  index: number;
  code: 'QOE_ERR_INGEST_VALIDATION';
  field: string;
  message: string;
}

export interface BeaconRouteDeps {
  validators: BeaconValidators;
  ipHashSecret: string;
  now(): number;
  publish(events: SessionEvent[]): Promise<void>;
  /** Counts events by outcome (accepted, rejected = invalid, refused = bus overloaded). */
  onOutcome?(outcome: IngestOutcome, n: number): void;
}

export type IngestOutcome = 'accepted' | 'rejected' | 'refused';

/** Pure: splits a batch's events into the valid ones and the rejected ones (with their index). */
export function checkEvents(events: readonly unknown[], validators: BeaconValidators): { valid: BeaconEvent[]; rejected: RejectedEvent[] } {
  const valid: BeaconEvent[] = [];
  const rejected: RejectedEvent[] = [];
  events.forEach((value, index) => {
    const r = validators.event(value, `/events/${index}`);
    if (r.ok) valid.push(r.event);
    else rejected.push({ index, code: 'QOE_ERR_INGEST_VALIDATION', field: r.field, message: r.message });
  });
  return { valid, rejected };
}

export function beaconRoutes(deps: BeaconRouteDeps): FastifyPluginAsync {
  return async function beaconRoutesPlugin(app) {
    app.post(
      '/v1/beacons',
      {
        schema: {
          summary: 'Ingest a batch of native player events',
          description:
            'Content-Type application/json or text/plain (navigator.sendBeacon). Each event is validated on its own: ' +
            'valid events are published and invalid ones listed in `rejected` (202); 400 when the envelope or every event is invalid.',
          consumes: ['application/json', 'text/plain'],
          body: inlineRefs(beaconBatchSchema),
          response: {
            202: acceptedBodySchema,
            400: badRequestBodySchema,
            413: errorBodySchema,
            415: errorBodySchema,
            503: errorBodySchema,
          },
        },
        // Only the envelope is checked before the handler (with our non-mutating ajv, compiled once);
        // events are checked one by one in the handler so that a partial batch can be accepted.
        validatorCompiler: ({ httpPart }) => (httpPart === 'body' ? deps.validators.envelope : () => true),
      },
      async function postBeacons(request: FastifyRequest, reply: FastifyReply) {
        const receivedAtMs = deps.now();
        const body = request.body as { events: unknown[]; dims?: BeaconDims };
        const { valid, rejected } = checkEvents(body.events, deps.validators);
        if (rejected.length > 0) deps.onOutcome?.('rejected', rejected.length);
        if (valid.length === 0) {
          const first = rejected[0];
          const err = httpError('QOE_ERR_INGEST_VALIDATION', 'every event in the batch failed validation', {
            field: first?.field ?? '/events',
            details: { rejected },
          });
          return reply.code(err.status).send({ ...err.body, accepted: 0, rejected });
        }
        const ctx = { receivedAtMs, clientHash: clientHash(deps.ipHashSecret, request.ip) };
        const events = valid.map((e) => normalizeEvent(e, body.dims, ctx));
        try {
          await deps.publish(events);
        } catch (err) {
          deps.onOutcome?.('refused', events.length);
          if (isQoeError(err) && err.retriable) {
            request.log.debug({ err }, 'publish refused, answering 503');
            const out = httpError('QOE_ERR_INGEST_OVERLOADED', undefined, { details: { cause: err.code } });
            return reply.code(out.status).header('Retry-After', '1').send(out.body);
          }
          throw err;
        }
        deps.onOutcome?.('accepted', events.length);
        return reply.code(202).send({ accepted: events.length, rejected });
      },
    );
  };
}
