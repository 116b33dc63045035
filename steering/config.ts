/**
 * The steering slice of the configuration. lib/config.ts stays the only reader of process.env: it is
 * meant to call parseSteeringEnv(env) and hand the frozen result to createSteeringService and the
 * routes. Env names and defaults: STEERING_ENV (documented in docs/steering.md).
 */
import { QoeError } from '../lib/errors.js';

export interface SteeringConfig {
  /** Kill switch state at start (QOE_STEERING_KILL_SWITCH). */
  killSwitch: boolean;
  /** CDN names in the order used when nothing is steered (QOE_STEERING_NEUTRAL). */
  neutralPriority: string[];
  /** CDN name → content-steering pathway id / DASH serviceLocation (QOE_STEERING_PATHWAYS); {} = the CDN names are the ids. */
  pathways: Record<string, string>;
  /** Bearer tokens that may read the feed and the decisions (QOE_STEERING_TOKENS). */
  tokens: string[];
  /** Bearer tokens that may also flip the kill switch (QOE_STEERING_ADMIN_TOKENS). */
  adminTokens: string[];
  /** Request header carrying the client's country, set by the CDN/edge (QOE_STEERING_SCOPE_HEADER). */
  scopeHeader: string;
  /** Manifest TTL: seconds until the player asks again (QOE_STEERING_TTL_S). */
  ttlSeconds: number;
}

export const STEERING_ENV = {
  tokens: { env: 'QOE_STEERING_TOKENS', default: '', doc: 'comma list of bearer tokens for WS /v1/steering/stream and GET /v1/steering/decisions; empty = feed closed (401)' },
  adminTokens: { env: 'QOE_STEERING_ADMIN_TOKENS', default: '', doc: 'comma list of bearer tokens that may also POST /v1/steering/kill-switch' },
  killSwitch: { env: 'QOE_STEERING_KILL_SWITCH', default: 'false', doc: 'start with the kill switch on: every scope held at the neutral priority' },
  neutral: { env: 'QOE_STEERING_NEUTRAL', default: '', doc: 'comma list of CDN names, most preferred first, used when nothing is steered' },
  pathways: { env: 'QOE_STEERING_PATHWAYS', default: '', doc: 'comma list cdn=pathway (e.g. cdn-a=A,cdn-b=B); empty = pathway ids are the CDN names' },
  scopeHeader: { env: 'QOE_STEERING_SCOPE_HEADER', default: 'x-country', doc: 'request header with the client country (ISO 3166-1 alpha-2), set by the CDN/edge' },
  ttlS: { env: 'QOE_STEERING_TTL_S', default: '60', doc: 'content-steering manifest TTL (seconds)' },
} as const;

type Env = Record<string, string | undefined>;

function raw(env: Env, key: keyof typeof STEERING_ENV): string {
  const v = env[STEERING_ENV[key].env];
  return v === undefined || v.trim() === '' ? STEERING_ENV[key].default : v.trim();
}

function list(s: string): string[] {
  return s.split(',').map((x) => x.trim()).filter((x) => x.length > 0);
}

function invalid(key: keyof typeof STEERING_ENV, value: string, expected: string): QoeError {
  return new QoeError('QOE_ERR_CONFIG_INVALID', `${STEERING_ENV[key].env}=${value}: ${expected}`);
}

export function parsePathways(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of list(s)) {
    const eq = pair.indexOf('=');
    const cdn = pair.slice(0, eq).trim();
    const id = pair.slice(eq + 1).trim();
    if (eq < 1 || id === '') throw invalid('pathways', s, `'${pair}' is not cdn=pathway`);
    if (!/^[A-Za-z0-9._-]+$/.test(id)) throw invalid('pathways', s, `pathway id '${id}' must be [A-Za-z0-9._-]+`);
    out[cdn] = id;
  }
  return out;
}

/** Validates the QOE_STEERING_* variables of `env`, applies the defaults, returns a frozen slice. */
export function parseSteeringEnv(env: Env): SteeringConfig {
  const ks = raw(env, 'killSwitch').toLowerCase();
  if (!['true', '1', 'false', '0'].includes(ks)) throw invalid('killSwitch', ks, 'expected true or false');
  const ttl = Number(raw(env, 'ttlS'));
  if (!Number.isInteger(ttl) || ttl < 1 || ttl > 86_400) throw invalid('ttlS', raw(env, 'ttlS'), 'expected an integer in [1, 86400]');
  const header = raw(env, 'scopeHeader').toLowerCase();
  if (!/^[a-z0-9-]+$/.test(header)) throw invalid('scopeHeader', header, 'not a header name');
  const tokens = list(raw(env, 'tokens'));
  const adminTokens = list(raw(env, 'adminTokens'));
  for (const t of [...tokens, ...adminTokens]) {
    if (t.length < 16) throw new QoeError('QOE_ERR_CONFIG_INVALID', 'steering tokens must be at least 16 characters');
  }
  const config: SteeringConfig = {
    killSwitch: ks === 'true' || ks === '1',
    neutralPriority: list(raw(env, 'neutral')),
    pathways: parsePathways(raw(env, 'pathways')),
    tokens,
    adminTokens,
    scopeHeader: header,
    ttlSeconds: ttl,
  };
  Object.freeze(config.neutralPriority);
  Object.freeze(config.pathways);
  Object.freeze(config.tokens);
  Object.freeze(config.adminTokens);
  return Object.freeze(config);
}
