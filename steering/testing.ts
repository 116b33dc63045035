/** Test helpers for steering (not shipped behaviour): a config, decisions, a listening app, a WS client that records messages. */
import type { AddressInfo } from 'node:net';
import { onTestFinished } from 'vitest';
import WebSocket from 'ws';
import { buildApp } from '../ingest/app.js';
import { silentLogger } from '../lib/logger.js';
import type { SteeringConfig } from './config.js';
import type { DecisionInput, SteeringService } from './service.js';
import { createSteeringStream, type StreamOptions, type SteeringStream } from './stream.js';
import { steeringRoutes } from './routes.js';

export const READ_TOKEN = 'read-token-0123456789';
export const ADMIN_TOKEN = 'admin-token-0123456789';

export function testConfig(over: Partial<SteeringConfig> = {}): SteeringConfig {
  return {
    killSwitch: false,
    neutralPriority: ['cdn-a', 'cdn-b'],
    pathways: { 'cdn-a': 'A', 'cdn-b': 'B' },
    tokens: [READ_TOKEN],
    adminTokens: [ADMIN_TOKEN],
    scopeHeader: 'x-country',
    ttlSeconds: 30,
    ...over,
  };
}

export function demote(country: string, cdn: string, others: string[], over: Partial<DecisionInput> = {}): DecisionInput {
  return {
    scope: { country, asn: '' },
    priority: [...others, cdn],
    action: 'demote',
    reason: { metric: 'rebuffer_ratio', cdn, value: 0.08, baseline: 0.01, score: 7.5, windowStartMs: 1_700_000_000_000, windowMs: 10_000, detail: `${cdn} rebuffering` },
    ttlMs: 600_000,
    ...over,
  };
}

/** Polls `cond` until it holds or the deadline passes (tests never sleep for a fixed time). */
export async function waitFor(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export interface StreamMessage {
  version: number;
  type: 'snapshot' | 'decision' | 'error';
  seq?: number;
  killSwitch?: boolean;
  decisions?: Array<{ seq: number; scope: { country: string }; action: string; priority: string[] }>;
  decision?: { seq: number; scope: { country: string }; action: string; priority: string[] };
  code?: string;
  message?: string;
}

export interface Client {
  ws: WebSocket;
  messages: StreamMessage[];
  closed: { code: number; reason: string } | undefined;
  decisionSeqs(): number[];
}

export function connect(baseUrl: string, query: string, opts: WebSocket.ClientOptions = {}): Client {
  const ws = new WebSocket(`${baseUrl.replace(/^http/, 'ws')}/v1/steering/stream${query}`, opts);
  const client: Client = {
    ws,
    messages: [],
    closed: undefined,
    decisionSeqs: () => client.messages.flatMap((m) => (m.type === 'decision' && m.decision !== undefined ? [m.decision.seq] : [])),
  };
  ws.on('message', (data: WebSocket.RawData) => client.messages.push(JSON.parse(String(data)) as StreamMessage));
  ws.on('close', (code: number, reason: Buffer) => {
    client.closed = { code, reason: reason.toString() };
  });
  ws.on('error', () => undefined);
  onTestFinished(() => ws.terminate());
  return client;
}

/** buildApp (the real ingest app) with the steering plugins, listening on a free port; closed after the test. */
export async function listenWithSteering(service: SteeringService, streamOpts: StreamOptions = {}): Promise<{ url: string; stream: SteeringStream }> {
  const stream = createSteeringStream(service, streamOpts);
  const app = buildApp({
    http: { port: 0, host: '127.0.0.1', bodyLimitBytes: 1_048_576, corsOrigins: '*', trustProxy: false },
    log: silentLogger(),
    ipHashSecret: 'x',
    publish: async () => undefined,
    isReady: () => true,
    plugins: [steeringRoutes(service), stream.plugin],
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  onTestFinished(() => app.close());
  const { port } = app.server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, stream };
}
