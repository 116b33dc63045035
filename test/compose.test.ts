import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ALL_ENV_SPECS, CONFIG_SPEC, ROLES } from '../lib/config.js';
import { IMAGES } from '../lib/images.js';
import { projectPath } from '../lib/paths.js';

interface Service {
  image?: string;
  build?: string;
  environment?: Record<string, string>;
  ports?: string[];
  healthcheck?: { test: unknown };
  volumes?: string[];
}

const compose = parse(readFileSync(projectPath('docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, Service> };
const services = Object.entries(compose.services);
const qoe = services.filter(([name]) => name.startsWith('qoe-'));

describe('docker-compose.yml', () => {
  it('every service has a healthcheck', () => {
    for (const [name, s] of services) expect(s.healthcheck?.test, name).toBeDefined();
  });

  it('names only the images pinned in lib/images.ts, and qoe-stream built from the Dockerfile', () => {
    const pinned = new Set<string>(Object.values(IMAGES));
    for (const [name, s] of services) {
      if (name.startsWith('qoe-')) {
        expect(s.build, name).toBe('.');
        continue;
      }
      expect(pinned.has(s.image ?? ''), `${name}: ${s.image}`).toBe(true);
    }
    expect(readFileSync(projectPath('Dockerfile'), 'utf8')).toContain(`FROM ${IMAGES.node}`);
  });

  it('gives qoe-stream services only env vars the config knows, and runs every role', () => {
    const known = new Set<string>(ALL_ENV_SPECS.map((s) => s.env));
    const roles = new Set<string>();
    for (const [name, s] of qoe) {
      for (const key of Object.keys(s.environment ?? {})) expect(known.has(key), `${name}: ${key}`).toBe(true);
      for (const r of (s.environment?.QOE_ROLES ?? '').split(',')) roles.add(r);
      const port = s.environment?.PORT ?? CONFIG_SPEC.port.default;
      for (const p of s.ports ?? []) expect(p.split(':')[1], `${name} container port`).toBe(port);
    }
    expect([...roles].sort()).toEqual([...ROLES].sort());
  });

  it('mounts files that exist in the repository', () => {
    for (const [name, s] of services) {
      for (const v of s.volumes ?? []) {
        const host = v.split(':')[0] ?? '';
        if (host.startsWith('./dashboards/out')) continue; // written by npm run dashboards
        expect(existsSync(projectPath(host)), `${name}: ${host}`).toBe(true);
      }
    }
  });
});
