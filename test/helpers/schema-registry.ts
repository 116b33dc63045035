import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import avro from 'avsc';
import { afterAll } from 'vitest';
import type { Bus, BusRecord } from '../../lib/bus/types.js';
import { waitUntil } from './runtime.js';

/**
 * A STAND-IN for a Confluent-compatible schema registry: the REST calls qoe-stream and common
 * clients use, on a real socket (127.0.0.1, port 0), state in memory.
 *
 * Why a stand-in: no real registry could be run here without Docker. Confluent's registry and
 * Karapace are not in the registries this workplace reaches (Maven Central, PyPI); Apicurio
 * Registry's app (io.apicurio:apicurio-registry-app 2.6.13.Final, 3.3.3) is on Maven Central only as
 * an un-augmented Quarkus module, and several of its own modules (apicurio-registry-schema-util-provider,
 * -contracts-rules) for those versions are not served, so it cannot be assembled. The wire format is
 * still checked against independent implementations: Python fastavro decodes the Avro bodies after
 * reading the schema from this registry over HTTP (test/python/decode_confluent.py).
 *
 * Served, as Confluent documents them: POST /subjects/{subject}/versions (idempotent per subject; one
 * global id per distinct schema, shared across subjects), POST /subjects/{subject} (is this schema
 * registered under the subject?), GET /schemas/ids/{id}, GET /subjects, GET /subjects/{subject}/versions,
 * GET /subjects/{subject}/versions/{n|latest}, GET and PUT /config/{subject} (the subject's
 * compatibility level, stored and echoed, never enforced; @kafkajs/confluent-schema-registry's
 * register() reads it, then sets it on a subject's first registration); errors as {error_code, message}
 * (40401, 40402, 40403, 40408, 42201, 42203, 401). Not served: compatibility checks, global config,
 * deletes, references, non-Avro schema types. test/schema-registry-kafkajs.test.ts drives it with that
 * widely used client.
 */
export interface StandInRegistry {
  /** http://[user:pass@]127.0.0.1:port */
  url: string;
  /** Every request seen: "METHOD path". */
  requests: string[];
  /** Registers directly (as another producer would), returning the id. */
  register(subject: string, schema: string): number;
  stop(): Promise<void>;
}

const COMPATIBILITY_LEVELS = new Set(['NONE', 'BACKWARD', 'BACKWARD_TRANSITIVE', 'FORWARD', 'FORWARD_TRANSITIVE', 'FULL', 'FULL_TRANSITIVE']);

interface Stored {
  id: number;
  schema: string;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/vnd.schemaregistry.v1+json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function bodyOf(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startStandInRegistry(opts: { auth?: { user: string; password: string }; port?: number } = {}): Promise<StandInRegistry> {
  const byId = new Map<number, Stored>();
  const byText = new Map<string, Stored>();
  const subjects = new Map<string, number[]>();
  const compatibility = new Map<string, string>();
  const requests: string[] = [];
  const expectedAuth = opts.auth && `Basic ${Buffer.from(`${opts.auth.user}:${opts.auth.password}`).toString('base64')}`;

  function register(subject: string, schema: string): number {
    // Same schema, same id, whatever the subject (Confluent's ids are global).
    const text = JSON.stringify(JSON.parse(schema));
    let stored = byText.get(text);
    if (stored === undefined) {
      stored = { id: byId.size + 1, schema: text };
      byId.set(stored.id, stored);
      byText.set(text, stored);
    }
    const versions = subjects.get(subject) ?? [];
    if (!versions.includes(stored.id)) versions.push(stored.id);
    subjects.set(subject, versions);
    return stored.id;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    requests.push(`${req.method ?? ''} ${path}`);
    if (expectedAuth !== undefined && req.headers.authorization !== expectedAuth) return send(res, 401, { error_code: 401, message: 'Unauthorized' });
    const parts = path.split('/').filter((p) => p !== '').map(decodeURIComponent);
    if (req.method === 'POST' && parts[0] === 'subjects' && (parts.length === 2 || (parts.length === 3 && parts[2] === 'versions'))) {
      let schema: string;
      try {
        const body = JSON.parse(await bodyOf(req)) as { schema?: unknown; schemaType?: unknown };
        if (body.schemaType !== undefined && body.schemaType !== 'AVRO') throw new Error('only AVRO');
        if (typeof body.schema !== 'string') throw new Error('schema must be a string');
        schema = body.schema;
        avro.Type.forSchema(JSON.parse(schema) as avro.Schema);
      } catch (err) {
        return send(res, 422, { error_code: 42201, message: `Invalid schema: ${(err as Error).message}` });
      }
      const subject = parts[1] ?? '';
      if (parts.length === 3) return send(res, 200, { id: register(subject, schema) });
      const versions = subjects.get(subject);
      if (versions === undefined) return send(res, 404, { error_code: 40401, message: `Subject '${subject}' not found.` });
      const stored = byText.get(JSON.stringify(JSON.parse(schema)));
      const version = stored === undefined ? 0 : versions.indexOf(stored.id) + 1;
      if (stored === undefined || version === 0) return send(res, 404, { error_code: 40403, message: 'Schema not found' });
      return send(res, 200, { subject, version, id: stored.id, schema: stored.schema });
    }
    if (parts.length === 2 && parts[0] === 'config') return config(req, res, parts[1] ?? '');
    if (req.method !== 'GET') return send(res, 405, { error_code: 405, message: 'Method not allowed' });
    if (parts.length === 3 && parts[0] === 'schemas' && parts[1] === 'ids') {
      const stored = byId.get(Number(parts[2]));
      return stored === undefined ? send(res, 404, { error_code: 40403, message: 'Schema not found' }) : send(res, 200, { schema: stored.schema });
    }
    if (parts.length === 1 && parts[0] === 'subjects') return send(res, 200, [...subjects.keys()]);
    const versions = parts[0] === 'subjects' ? subjects.get(parts[1] ?? '') : undefined;
    if (versions === undefined) return send(res, 404, { error_code: 40401, message: 'Subject not found' });
    if (parts.length === 3 && parts[2] === 'versions') return send(res, 200, versions.map((_, i) => i + 1));
    if (parts.length === 4 && parts[2] === 'versions') {
      const n = parts[3] === 'latest' ? versions.length : Number(parts[3]);
      const id = versions[n - 1];
      const stored = id === undefined ? undefined : byId.get(id);
      if (stored === undefined) return send(res, 404, { error_code: 40402, message: 'Version not found' });
      return send(res, 200, { subject: parts[1], version: n, id: stored.id, schema: stored.schema });
    }
    return send(res, 404, { error_code: 404, message: 'Not found' });
  }

  /** GET/PUT /config/{subject}: Confluent answers {compatibilityLevel} to GET, echoes {compatibility} to PUT. */
  async function config(req: IncomingMessage, res: ServerResponse, subject: string): Promise<void> {
    if (req.method === 'GET') {
      const level = compatibility.get(subject);
      return level === undefined
        ? send(res, 404, { error_code: 40408, message: `Subject '${subject}' does not have subject-level compatibility configured` })
        : send(res, 200, { compatibilityLevel: level });
    }
    if (req.method !== 'PUT') return send(res, 405, { error_code: 405, message: 'Method not allowed' });
    let level: unknown;
    try {
      level = (JSON.parse(await bodyOf(req)) as { compatibility?: unknown }).compatibility;
    } catch {
      level = undefined;
    }
    if (typeof level !== 'string' || !COMPATIBILITY_LEVELS.has(level)) return send(res, 422, { error_code: 42203, message: 'Invalid compatibility level' });
    compatibility.set(subject, level);
    return send(res, 200, { compatibility: level });
  }

  const server = createServer((req, res) => void handle(req, res).catch((err: unknown) => send(res, 500, { error_code: 50001, message: String(err) })));
  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const userinfo = opts.auth ? `${encodeURIComponent(opts.auth.user)}:${encodeURIComponent(opts.auth.password)}@` : '';
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => (stopped ??= new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  afterAll(stop);
  return { url: `http://${userinfo}127.0.0.1:${port}`, requests, register, stop };
}

/** Every record of `topic`, read through `bus` from the beginning with a fresh group (at least `n`). */
export async function readAll(bus: Bus, topic: string, n: number): Promise<BusRecord[]> {
  const got: BusRecord[] = [];
  const c = bus.consumer({ groupId: `read-${Math.random()}`, topics: [topic] });
  await c.run({ eachBatch: async (b) => void got.push(...b.records) });
  await waitUntil(`${n} records on ${topic}`, () => got.length >= n, 10_000);
  await c.close();
  return got;
}
