import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll } from 'vitest';
import { dockerEngineReachable } from './testcontainers.js';
import { freePort } from './ports.js';

/**
 * Runs Debian's clickhouse-server (18.16, apt package `clickhouse-server`) for a test file: its own
 * temp data directory, free ports on 127.0.0.1, a minimal config written here, timezone UTC.
 *
 * Without the binary, tests skip with a message naming the package — unless QOE_REQUIRE_SERVICES
 * is set (CI), in which case the missing service is an error.
 *
 * With a Docker engine reachable (test/helpers/testcontainers.ts), the server is IMAGES.clickhouse
 * (a current ClickHouse) run through testcontainers instead.
 */

export interface ClickHouseServer {
  url: string;
  httpPort: number;
  dataDir: string;
  /** Stops the server and deletes its data directory. */
  stop(): Promise<void>;
  /**
   * Stops the server (SIGTERM, SIGKILL after 10 s) and keeps its data directory and ports, for an
   * outage: `resume()` starts it again on the same data and URL.
   */
  pause(): Promise<void>;
  /** Starts a paused server again on the same data directory, ports and URL; waits for /ping. */
  resume(): Promise<void>;
  /** False between pause() and resume(). */
  running(): boolean;
}

const PACKAGE_HINT = 'install it with `apt-get install -y clickhouse-server clickhouse-client`';
const CANDIDATES = ['/usr/sbin/clickhouse-server', '/usr/bin/clickhouse-server'];

/** The server binary: $QOE_CLICKHOUSE_SERVER_BIN, else Debian's locations. */
export function clickhouseServerBinary(): string | undefined {
  const override = process.env.QOE_CLICKHOUSE_SERVER_BIN;
  if (override !== undefined && override !== '') return existsSync(override) ? override : undefined;
  return CANDIDATES.find((p) => existsSync(p));
}

function servicesRequired(): boolean {
  const v = process.env.QOE_REQUIRE_SERVICES;
  return v !== undefined && v !== '' && v !== '0';
}

/**
 * Why the server tests cannot run here, or undefined when they can. Throws when the binary is
 * missing and QOE_REQUIRE_SERVICES is set.
 */
export function clickhouseServerSkipReason(): string | undefined {
  if (clickhouseServerBinary() !== undefined || dockerEngineReachable()) return undefined;
  const reason = `clickhouse-server not found (${CANDIDATES.join(', ')}): ${PACKAGE_HINT}`;
  if (servicesRequired()) throw new Error(`QOE_REQUIRE_SERVICES is set but ${reason}`);
  return reason;
}

function configXml(dir: string, ports: { http: number; tcp: number; interserver: number }): string {
  return `<?xml version="1.0"?>
<yandex>
  <logger>
    <level>warning</level>
    <log>${dir}/server.log</log>
    <errorlog>${dir}/server.err.log</errorlog>
    <size>10M</size>
    <count>1</count>
  </logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>${ports.http}</http_port>
  <tcp_port>${ports.tcp}</tcp_port>
  <interserver_http_port>${ports.interserver}</interserver_http_port>
  <interserver_http_host>127.0.0.1</interserver_http_host>
  <path>${dir}/data/</path>
  <tmp_path>${dir}/data/tmp/</tmp_path>
  <user_files_path>${dir}/data/user_files/</user_files_path>
  <format_schema_path>${dir}/data/format_schemas/</format_schema_path>
  <users_config>${dir}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <keep_alive_timeout>10</keep_alive_timeout>
  <max_concurrent_queries>100</max_concurrent_queries>
  <mark_cache_size>268435456</mark_cache_size>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>
</yandex>
`;
}

const USERS_XML = `<?xml version="1.0"?>
<yandex>
  <profiles><default></default></profiles>
  <users>
    <default>
      <password></password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
  </users>
  <quotas><default></default></quotas>
</yandex>
`;

async function pingUntilUp(url: string, child: ChildProcess, deadlineMs: number): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`clickhouse-server exited (${child.exitCode ?? child.signalCode})`);
    try {
      const res = await fetch(`${url}/ping`, { signal: AbortSignal.timeout(1000) });
      if (res.ok && (await res.text()).startsWith('Ok')) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`clickhouse-server did not answer ${url}/ping within ${deadlineMs} ms`);
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

type Ports = { http: number; tcp: number; interserver: number };

/** Spawns the server on `dir` with `ports` (config written there) and waits until it answers. */
async function spawnServer(bin: string, dir: string, ports: Ports): Promise<{ child: ChildProcess; onExit: () => void }> {
  await writeFile(join(dir, 'config.xml'), configXml(dir, ports));
  await writeFile(join(dir, 'users.xml'), USERS_XML);
  const child = spawn(bin, [`--config-file=${join(dir, 'config.xml')}`], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => {
    stderr = (stderr + b.toString()).slice(-4000);
  });
  // Never leave a server behind, even when the test process dies without running afterAll.
  const onExit = (): void => {
    child.kill('SIGKILL');
  };
  process.once('exit', onExit);
  try {
    await pingUntilUp(`http://127.0.0.1:${ports.http}`, child, 30_000);
  } catch (err) {
    process.off('exit', onExit);
    await stopChild(child);
    const log = await readFile(join(dir, 'server.err.log'), 'utf8').catch(() => '');
    throw new Error(`${(err as Error).message}\nstderr: ${stderr}\nerror log: ${log.slice(-2000)}`);
  }
  return { child, onExit };
}

async function startOnce(bin: string, dir: string): Promise<ClickHouseServer> {
  const ports: Ports = { http: await freePort(), tcp: await freePort(), interserver: await freePort() };
  let current: { child: ChildProcess; onExit: () => void } | undefined = await spawnServer(bin, dir, ports);
  async function halt(): Promise<void> {
    if (current === undefined) return;
    process.off('exit', current.onExit);
    await stopChild(current.child);
    current = undefined;
  }
  return {
    url: `http://127.0.0.1:${ports.http}`,
    httpPort: ports.http,
    dataDir: dir,
    async stop() {
      await halt();
      await rm(dir, { recursive: true, force: true });
    },
    pause: halt,
    async resume() {
      if (current !== undefined) return;
      current = await spawnServer(bin, dir, ports);
    },
    running: () => current !== undefined,
  };
}

/** Starts a server in a fresh temp directory; retries with new ports if one was taken meanwhile. */
export async function startClickHouseServer(): Promise<ClickHouseServer> {
  if (dockerEngineReachable()) {
    const { startClickHouseContainer } = await import('./testcontainers.js');
    return startClickHouseContainer(await freePort());
  }
  const bin = clickhouseServerBinary();
  if (bin === undefined) throw new Error(`clickhouse-server not found: ${PACKAGE_HINT}`);
  const dir = await mkdtemp(join(tmpdir(), 'qoe-clickhouse-'));
  let lastErr: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(bin, dir);
    } catch (err) {
      lastErr = err;
    }
  }
  await rm(dir, { recursive: true, force: true });
  throw lastErr;
}

/**
 * For a describe block: starts the server before its tests and stops it after (cleanup registered
 * here). Returns a getter valid inside tests.
 */
export function useClickHouseServer(): () => ClickHouseServer {
  let server: ClickHouseServer | undefined;
  beforeAll(async () => {
    server = await startClickHouseServer();
  });
  afterAll(async () => {
    await server?.stop();
    server = undefined;
  });
  return () => {
    if (server === undefined) throw new Error('clickhouse-server is not running (use inside a test)');
    return server;
  };
}

/** A database name no other test uses. */
export function randomDatabaseName(prefix = 'qoe_test'): string {
  return `${prefix}_${randomBytes(6).toString('hex')}`;
}
