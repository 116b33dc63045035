import { createHmac } from 'node:crypto';

/**
 * The only trace of a client IP that leaves the request: HMAC-SHA256(secret, ip), first 16 hex
 * characters (64 bits: enough to count distinct clients, useless to recover the address without the key).
 */
export function clientHash(secret: string, ip: string): string {
  return createHmac('sha256', secret).update(ip).digest('hex').slice(0, 16);
}
