/**
 * The load generator, run as its own process (so that it does not share an event loop, and can be
 * pinned to its own core, with the server): `connections` keep-alive connections, each POSTing `body`
 * back to back (one request in flight per connection) for warmupMs + durationMs. Prints one JSON line
 * with the counts of the measured part and its own CPU use (to show whether it was the bottleneck).
 *
 *   npx tsx bench/loadgen.ts <url> <bodyFile> [connections] [durationMs] [warmupMs]
 */
import { Agent, request } from 'node:http';
import { readFileSync } from 'node:fs';

export interface LoadResult {
  requests: number;
  ok: number;
  non2xx: number;
  errors: number;
  seconds: number;
  /** Loadgen CPU time / wall time: ~1.0 means the generator saturated its core. */
  cpuShare: number;
}

async function main(): Promise<void> {
  const [url, bodyFile, conns = '32', dur = '10000', warm = '2000'] = process.argv.slice(2);
  if (url === undefined || bodyFile === undefined) throw new Error('usage: loadgen.ts <url> <bodyFile> [connections] [durationMs] [warmupMs]');
  const body = readFileSync(bodyFile);
  const connections = Number(conns);
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const target = new URL(url);
  const headers = { 'content-type': 'application/json', 'content-length': String(body.length) };
  let measuring = false;
  let stop = false;
  const r: LoadResult = { requests: 0, ok: 0, non2xx: 0, errors: 0, seconds: 0, cpuShare: 0 };

  function once(): Promise<void> {
    return new Promise((resolve) => {
      const req = request({ agent, host: target.hostname, port: target.port, path: target.pathname, method: 'POST', headers }, (res) => {
        res.resume();
        res.on('end', () => {
          if (measuring) {
            r.requests += 1;
            if (res.statusCode !== undefined && res.statusCode >= 200 && res.statusCode < 300) r.ok += 1;
            else r.non2xx += 1;
          }
          resolve();
        });
      });
      req.on('error', () => {
        if (measuring) r.errors += 1;
        resolve();
      });
      req.end(body);
    });
  }
  async function loop(): Promise<void> {
    while (!stop) await once();
  }

  const loops = Array.from({ length: connections }, () => loop());
  await new Promise((res) => setTimeout(res, Number(warm)));
  measuring = true;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise((res) => setTimeout(res, Number(dur)));
  measuring = false;
  r.seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  r.cpuShare = (cpu.user + cpu.system) / 1e6 / r.seconds;
  stop = true;
  await Promise.all(loops);
  agent.destroy();
  process.stdout.write(JSON.stringify(r) + '\n');
}

await main();
