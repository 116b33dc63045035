/**
 * Bearer-token auth for the steering feed and admin routes. Tokens come from the configuration
 * (QOE_STEERING_TOKENS, QOE_STEERING_ADMIN_TOKENS); comparison is constant-time over SHA-256
 * digests, so neither the token nor its length leaks through timing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { SteeringConfig } from './config.js';

export type AuthLevel = 'none' | 'read' | 'admin';

export interface Authorizer {
  level(token: string | undefined): AuthLevel;
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

function matchesAny(candidate: Buffer, digests: readonly Buffer[]): boolean {
  let found = false;
  // No early exit: every configured token is compared.
  for (const d of digests) found = timingSafeEqual(candidate, d) || found;
  return found;
}

export function createAuthorizer(config: Pick<SteeringConfig, 'tokens' | 'adminTokens'>): Authorizer {
  const read = config.tokens.map(digest);
  const admin = config.adminTokens.map(digest);
  return {
    level(token) {
      if (token === undefined || token === '') return 'none';
      const d = digest(token);
      if (matchesAny(d, admin)) return 'admin';
      return matchesAny(d, read) ? 'read' : 'none';
    },
  };
}

/** `Authorization: Bearer <t>` wins; else `?token=<t>` (browsers cannot set headers on a WebSocket). */
export function tokenFrom(headers: IncomingHttpHeaders, query: URLSearchParams): string | undefined {
  const auth = headers.authorization;
  if (typeof auth === 'string') {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    if (m !== null) return m[1];
  }
  return query.get('token') ?? undefined;
}
