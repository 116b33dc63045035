import { pino, type Logger } from 'pino';

export type { Logger };

/** One pino root per process; components take children. Client IPs and session ids are redacted. */
export function createLogger(level: string, name = 'qoe-stream'): Logger {
  return pino({
    name,
    level,
    redact: { paths: ['req.remoteAddress', 'req.headers["x-forwarded-for"]', 'ip', 'clientIp'], censor: '[redacted]' },
  });
}

/** A logger that prints nothing, for tests and benchmarks. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
