import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ClickHouseError } from '@clickhouse/client';
import { describe, expect, it, onTestFinished } from 'vitest';
import { isQoeError } from '../lib/errors.js';
import { backoffMs } from '../lib/store/common.js';
import { classifyClickHouseError, createClickHouseStore } from '../lib/store/clickhouse.js';

/**
 * Insert retries of the server adapter, against a stand-in HTTP endpoint that breaks connections
 * on demand (a real server cannot be made to fail exactly the n-th request).
 */

interface FakeServer {
  url: string;
  inserts: () => number;
}

async function fakeClickHouse(handle: (insertNo: number, req: IncomingMessage, res: ServerResponse) => void): Promise<FakeServer> {
  let inserts = 0;
  const server = createServer((req, res) => {
    const body: Buffer[] = [];
    req.on('data', (b: Buffer) => body.push(b));
    req.on('end', () => {
      const query = new URL(req.url ?? '/', 'http://x').searchParams.get('query') ?? '';
      if (!query.startsWith('INSERT')) {
        res.end(); // CREATE DATABASE and the like: accepted
        return;
      }
      inserts += 1;
      handle(inserts, req, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, inserts: () => inserts };
}

describe('clickhouse store insert retries', () => {
  it('retries an insert whose connection breaks, then succeeds', async () => {
    const fake = await fakeClickHouse((n, req, res) => {
      if (n < 3) req.socket.destroy();
      else res.end();
    });
    const store = await createClickHouseStore({ url: fake.url, database: 'db', attempts: 5, retryBaseMs: 1, retryMaxMs: 5 });
    onTestFinished(() => store.close());
    await store.insert('t', [{ a: 1 }]);
    expect(fake.inserts()).toBe(3);
  });

  it('gives up after the bounded number of attempts with QOE_ERR_STORE_UNAVAILABLE', async () => {
    const fake = await fakeClickHouse((_n, req) => req.socket.destroy());
    const store = await createClickHouseStore({ url: fake.url, database: 'db', attempts: 4, retryBaseMs: 1, retryMaxMs: 5 });
    onTestFinished(() => store.close());
    const err: unknown = await store.insert('t', [{ a: 1 }]).catch((e: unknown) => e);
    expect(isQoeError(err, 'QOE_ERR_STORE_UNAVAILABLE')).toBe(true);
    expect(isQoeError(err) && err.retriable).toBe(true);
    expect(fake.inserts()).toBe(4);
  });

  it('never retries an error the server reports for the statement', async () => {
    const fake = await fakeClickHouse((_n, _req, res) => {
      res.statusCode = 500;
      res.end('Code: 27, e.displayText() = DB::Exception: Cannot parse input, e.what() = DB::Exception\n');
    });
    const store = await createClickHouseStore({ url: fake.url, database: 'db', attempts: 5, retryBaseMs: 1 });
    onTestFinished(() => store.close());
    const err: unknown = await store.insert('t', [{ a: 1 }]).catch((e: unknown) => e);
    expect(isQoeError(err, 'QOE_ERR_STORE_QUERY')).toBe(true);
    expect(fake.inserts()).toBe(1);
  });
});

describe('classifyClickHouseError', () => {
  it('reads server codes in the 18.16 and the current message formats', () => {
    const cases: [Error, string][] = [
      [new Error('Code: 62, e.displayText() = DB::Exception: Syntax error'), 'QOE_ERR_STORE_QUERY'],
      [new Error('Code: 62. DB::Exception: Syntax error. (SYNTAX_ERROR)'), 'QOE_ERR_STORE_QUERY'],
      [new Error('Code: 202, e.displayText() = DB::Exception: Too many simultaneous queries'), 'QOE_ERR_STORE_UNAVAILABLE'],
      [Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }), 'QOE_ERR_STORE_UNAVAILABLE'],
      [new Error('Timeout error.'), 'QOE_ERR_STORE_UNAVAILABLE'],
      [new ClickHouseError({ message: 'Syntax error', code: '62', type: 'SYNTAX_ERROR' }), 'QOE_ERR_STORE_QUERY'],
      [new ClickHouseError({ message: 'Too many parts', code: '252', type: 'TOO_MANY_PARTS' }), 'QOE_ERR_STORE_UNAVAILABLE'],
    ];
    for (const [raw, code] of cases) expect(classifyClickHouseError(raw, 'test').code, raw.message).toBe(code);
  });

  it('backs off exponentially within its bound', () => {
    expect([0, 1, 2, 3, 10].map((a) => backoffMs(a, 100, 1000, () => 1))).toEqual([100, 200, 400, 800, 1000]);
    expect(backoffMs(2, 100, 1000, () => 0)).toBe(200);
  });
});
