import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ALL_ENV_SPECS, loadConfig } from './config.js';
import { DIMENSIONS } from '../schemas/events.js';
import { isQoeError } from './errors.js';
import { projectPath } from './paths.js';

describe('loadConfig', () => {
  it('applies the documented defaults: embedded runtime, all roles', () => {
    const c = loadConfig({});
    expect(c.http.port).toBe(8080);
    expect(c.bus.kind).toBe('memory');
    expect(c.store.kind).toBe('chdb');
    expect([...c.roles].sort()).toEqual(['detector', 'ingest', 'processor', 'sink']);
    expect(c.processor.windowMs).toBe(10_000);
    expect(Object.isFrozen(c.processor)).toBe(true);
  });

  it('selects the distributed adapters from their env vars', () => {
    const c = loadConfig({ QOE_KAFKA_BROKERS: 'a:9092, b:9092', QOE_CLICKHOUSE_URL: 'http://ch:8123', QOE_ROLES: 'ingest,sink' });
    expect(c.bus).toMatchObject({ kind: 'kafka', brokers: ['a:9092', 'b:9092'], compression: 'lz4' });
    expect(loadConfig({ QOE_KAFKA_COMPRESSION: 'none' }).bus.compression).toBe('none');
    expect(loadConfig({ QOE_KAFKA_COMPRESSION: 'gzip' }).bus.compression).toBe('gzip');
    expect(c.store.kind).toBe('clickhouse');
    expect([...c.roles]).toEqual(['ingest', 'sink']);
  });

  it.each([
    ['PORT', '70000'], ['QOE_WINDOW_MS', '1500'], ['QOE_ROLES', 'ingest,bogus'], ['QOE_CLICKHOUSE_URL', 'ch:8123'],
    ['QOE_TRUST_PROXY', 'maybe'], ['QOE_CLICKHOUSE_DATABASE', 'x;drop'], ['QOE_SCHEMA_REGISTRY_URL', 'registry:8081'],
    ['QOE_SCHEMA_REGISTRY_URL', 'ftp://registry:8081'], ['QOE_SCHEMA_REGISTRY_URL', 'http://registry:8081/?x=1'],
    ['QOE_WINDOW_DIMENSIONS', 'cdn,country,ip'], ['QOE_WINDOW_DIMENSIONS', 'cdn,asn'], ['QOE_WINDOW_DIMENSIONS', ' , '],
    ['QOE_KAFKA_COMPRESSION', 'zstd'], ['QOE_KAFKA_COMPRESSION', 'LZ4'],
  ])('fails fast on %s=%s, naming the variable', (name, value) => {
    let err: unknown;
    try {
      loadConfig({ [name]: value });
    } catch (e) {
      err = e;
    }
    expect(isQoeError(err, 'QOE_ERR_CONFIG_INVALID')).toBe(true);
    expect((err as Error).message).toContain(name);
  });

  it('keeps every dimension in the windows by default, or the listed ones in DIMENSIONS order', () => {
    expect(loadConfig({}).processor.windowDims).toEqual(DIMENSIONS);
    expect(loadConfig({ QOE_WINDOW_DIMENSIONS: 'device_type, country,cdn,streamType' }).processor.windowDims).toEqual(['cdn', 'country', 'streamType', 'deviceType']);
    // The detector's ASN scopes need asn in the windows.
    expect(() => loadConfig({ QOE_WINDOW_DIMENSIONS: 'cdn,country', QOE_DETECTOR_ASN_SCOPES: 'true' })).toThrow(/must include asn/);
    expect(loadConfig({ QOE_WINDOW_DIMENSIONS: 'cdn,country,asn', QOE_DETECTOR_ASN_SCOPES: 'true' }).processor.windowDims).toEqual(['cdn', 'country', 'asn']);
  });

  it('takes a schema registry URL (default none: single-object encoding) and never repeats its credentials in an error', () => {
    expect(loadConfig({}).schemaRegistry.url).toBe('');
    expect(loadConfig({ QOE_SCHEMA_REGISTRY_URL: 'https://u:p@sr:8081/apis/ccompat/v7' }).schemaRegistry.url).toBe('https://u:p@sr:8081/apis/ccompat/v7');
    expect(() => loadConfig({ QOE_SCHEMA_REGISTRY_URL: 'ftp://user:hunter2@sr:8081' })).toThrow(/ftp:\/\/sr:8081/);
    expect(() => loadConfig({ QOE_SCHEMA_REGISTRY_URL: 'ftp://user:hunter2@sr:8081' })).not.toThrow(/hunter2/);
  });

  it('the README configuration table matches CONFIG_SPEC', () => {
    const readme = readFileSync(projectPath('README.md'), 'utf8');
    const table = readme.split('<!-- config-table:start -->')[1]?.split('<!-- config-table:end -->')[0] ?? '';
    const rows = table.split('\n').filter((l) => l.startsWith('| `'));
    const documented = rows.map((l) => {
      const cells = l.split('|').map((c) => c.trim());
      return { env: cells[1]?.replace(/`/g, ''), def: cells[2] === '(empty)' ? '' : cells[2]?.replace(/`/g, ''), doc: cells[3] };
    });
    const spec = ALL_ENV_SPECS.map((s) => ({ env: s.env, def: s.default, doc: s.doc }));
    expect(documented).toEqual(spec);
  });
});
