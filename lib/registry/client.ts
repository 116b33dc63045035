import { QoeError } from '../errors.js';

/**
 * A client of the Confluent Schema Registry REST API (also served by Apicurio's `ccompat` API,
 * Karapace, Redpanda), reduced to the two calls a producer and a consumer need:
 * - POST /subjects/{subject}/versions {"schema": "<Avro schema JSON>"} → {"id": n}: registers the
 *   schema under the subject, or finds it there (idempotent);
 * - GET /schemas/ids/{id} → {"schema": "<Avro schema JSON>"}: the schema a record's id names.
 * Credentials come from the URL's userinfo (`https://user:pass@host/…`, sent as HTTP Basic) and
 * never appear in messages (`displayUrl`).
 *
 * Errors: unreachable, timeout or 5xx → QOE_ERR_SCHEMA_REGISTRY_UNAVAILABLE (retriable); an unknown
 * id → QOE_ERR_SCHEMA_UNKNOWN_WRITER; any other 4xx (invalid or incompatible schema, 401) →
 * QOE_ERR_SCHEMA_REGISTRY_REJECTED.
 */
export interface SchemaRegistryClient {
  /** The registry's URL without credentials. */
  readonly displayUrl: string;
  /** Registers `schema` (Avro schema JSON text) under `subject`; the registry's global id for it. */
  register(subject: string, schema: string): Promise<number>;
  /** The Avro schema JSON text with this id. */
  schemaById(id: number): Promise<string>;
}

export interface SchemaRegistryClientOptions {
  /** http(s)://[user:pass@]host[:port][/path prefix, e.g. Apicurio's /apis/ccompat/v7] */
  url: string;
  /** Per request. Default 5000. */
  timeoutMs?: number;
}

const CONTENT_TYPE = 'application/vnd.schemaregistry.v1+json';
const ACCEPT = 'application/vnd.schemaregistry.v1+json, application/vnd.schemaregistry+json, application/json';
/** Confluent's error_code for "schema not found". */
const SCHEMA_NOT_FOUND = 40403;

/** Base URL (no credentials, no trailing slash) and the Authorization header its userinfo implies. */
export function parseRegistryUrl(url: string): { base: string; authorization: string | undefined } {
  const u = new URL(url);
  const authorization = u.username === '' && u.password === ''
    ? undefined
    : `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')}`;
  u.username = '';
  u.password = '';
  u.search = '';
  u.hash = '';
  return { base: u.href.replace(/\/+$/, ''), authorization };
}

export function createSchemaRegistryClient(opts: SchemaRegistryClientOptions): SchemaRegistryClient {
  const { base, authorization } = parseRegistryUrl(opts.url);
  const timeoutMs = opts.timeoutMs ?? 5000;

  async function call(method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
    const headers: Record<string, string> = { accept: ACCEPT };
    if (authorization !== undefined) headers.authorization = authorization;
    if (body !== undefined) headers['content-type'] = CONTENT_TYPE;
    let res: Response;
    let text: string;
    try {
      res = await fetch(`${base}${path}`, {
        method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs),
      });
      text = await res.text();
    } catch (err) {
      throw new QoeError('QOE_ERR_SCHEMA_REGISTRY_UNAVAILABLE', `schema registry ${base}: ${method} ${path} failed: ${(err as Error).message}`, { cause: err });
    }
    let json: Record<string, unknown> = {};
    try {
      json = text === '' ? {} : (JSON.parse(text) as Record<string, unknown>);
    } catch {
      // A proxy's HTML error page, say: the status decides what it means.
    }
    if (res.status >= 500) {
      throw new QoeError('QOE_ERR_SCHEMA_REGISTRY_UNAVAILABLE', `schema registry ${base}: ${method} ${path} answered ${res.status}`, { details: { status: res.status } });
    }
    return { status: res.status, json };
  }

  function refused(what: string, status: number, json: Record<string, unknown>): QoeError {
    const detail = typeof json.message === 'string' ? json.message : '';
    return new QoeError('QOE_ERR_SCHEMA_REGISTRY_REJECTED', `schema registry ${base}: ${what}: ${status} ${String(json.error_code ?? '')} ${detail}`.trim(), {
      details: { status, errorCode: json.error_code },
    });
  }

  return {
    displayUrl: base,
    async register(subject, schema) {
      const { status, json } = await call('POST', `/subjects/${encodeURIComponent(subject)}/versions`, { schema });
      if (status !== 200 || typeof json.id !== 'number') throw refused(`register under ${subject}`, status, json);
      return json.id;
    },
    async schemaById(id) {
      const { status, json } = await call('GET', `/schemas/ids/${id}`);
      if (status === 404 && (json.error_code === SCHEMA_NOT_FOUND || json.error_code === undefined)) {
        throw new QoeError('QOE_ERR_SCHEMA_UNKNOWN_WRITER', `schema registry ${base} has no schema with id ${id}`);
      }
      if (status !== 200 || typeof json.schema !== 'string') throw refused(`schema id ${id}`, status, json);
      const type = json.schemaType;
      if (type !== undefined && type !== 'AVRO') throw refused(`schema id ${id} is ${String(type)}, not AVRO`, status, json);
      return json.schema;
    },
  };
}
