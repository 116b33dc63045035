import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/**
 * A free TCP port on 127.0.0.1 for a server a test starts, chosen below the kernel's ephemeral
 * range. A port from listen(0) comes from that range, which is also where every outgoing connection
 * takes its local port: between choosing it and the server binding it (a JVM start, seconds later),
 * a client connection could take it — seen as a Kafka broker failing to bind ("Address already in
 * use") while another cluster's clients were busy. Ports below the range are only taken by listeners.
 */
export async function freePort(): Promise<number> {
  const low = 20_000;
  const high = ephemeralRangeStart() - 1;
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = low + Math.floor(Math.random() * (high - low + 1));
    if (await canListen(port)) return port;
  }
  throw new Error(`no free port found in ${low}–${high}`);
}

function ephemeralRangeStart(): number {
  try {
    const lo = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    // Linux default 32768; keep at least a few thousand ports to choose from.
    return Number.isInteger(lo) && lo > 25_000 ? lo : 32_768;
  } catch {
    return 32_768;
  }
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}
