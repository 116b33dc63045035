import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DASHBOARDS } from './index.js';
import { clickhouseDatasource, dashboardsProvider, prometheusDatasource } from './provisioning.js';

/**
 * Writes the dashboards and Grafana provisioning files:
 *
 *   dashboards/out/<name>.json
 *   dashboards/out/provisioning/dashboards/qoe.yaml
 *   dashboards/out/provisioning/datasources/clickhouse.yaml
 *   dashboards/out/provisioning/datasources/prometheus.yaml
 *
 * Usage: `npx tsx dashboards/build.ts [outDir]`. Output is deterministic (same input, same bytes).
 */

export interface OutputFile {
  path: string;
  content: string;
}

/** Every output file, relative to the output directory. Pure: nothing is written. */
export function renderOutputs(): OutputFile[] {
  const files: OutputFile[] = DASHBOARDS.map((d) => ({ path: d.file, content: `${JSON.stringify(d.build(), null, 2)}\n` }));
  files.push(
    { path: join('provisioning', 'dashboards', 'qoe.yaml'), content: dashboardsProvider() },
    { path: join('provisioning', 'datasources', 'clickhouse.yaml'), content: clickhouseDatasource() },
    { path: join('provisioning', 'datasources', 'prometheus.yaml'), content: prometheusDatasource() },
  );
  return files;
}

export async function writeOutputs(outDir: string): Promise<string[]> {
  const written: string[] = [];
  for (const f of renderOutputs()) {
    const path = join(outDir, f.path);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, f.content);
    written.push(path);
  }
  return written;
}

const isMain = process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1];
if (isMain) {
  const outDir = process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), 'out');
  const written = await writeOutputs(outDir);
  for (const p of written) console.log(p);
}
