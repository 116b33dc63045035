import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { TOPICS } from '../lib/bus/topics.js';
import { projectPath } from '../lib/paths.js';
import { sessionEventToAvro } from '../schemas/codec.js';
import { decodeSessionEvent } from '../schemas/codec.js';
import { planRun, sendRun } from '../sim/simulate.js';
import { replayEnv, startTestRuntime, tempDataDir } from './helpers/runtime.js';

/**
 * A second Avro implementation (Python fastavro) decodes the records ingest wrote to
 * qoe.beacons.v1: same header, same CRC-64-AVRO fingerprint, same field values.
 */
function fastavroMissing(): string | null {
  const r = spawnSync('python3', ['-c', 'import fastavro'], { encoding: 'utf8' });
  return r.status === 0 ? null : 'python3 with fastavro is not installed (pip install fastavro)';
}

const missing = fastavroMissing();
if (missing && process.env.QOE_REQUIRE_SERVICES === '1') throw new Error(`required: ${missing}`);

describe.skipIf(missing !== null)('records on the bus decode with fastavro', () => {
  it('ingest → qoe.beacons.v1 records decode identically in Python', async () => {
    // Only the ingest role: records stay on the topic for this test to read.
    const { runtime } = await startTestRuntime(replayEnv(tempDataDir(), { QOE_ROLES: 'ingest' }));
    try {
      const run = planRun({ seed: 3, views: 5, startMs: Date.now() - 600_000 });
      await sendRun(run, { target: runtime.url });
      const reader = runtime.bus.consumer({ groupId: 'fastavro-check', topics: [TOPICS.beacons] });
      const raw: Buffer[] = [];
      await reader.run({ eachBatch: async (b) => void raw.push(...b.records.map((r) => r.value)) });
      const deadline = Date.now() + 10_000;
      while (raw.length < run.truth.events && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      await reader.close();
      expect(raw.length).toBe(run.truth.events);

      const res = spawnSync('python3', [projectPath('test/python/decode_fastavro.py')], {
        input: JSON.stringify({ schema: projectPath('schemas/beacon-event.avsc'), records: raw.map((b) => b.toString('base64')) }),
        encoding: 'utf8',
        maxBuffer: 64 * 1024 * 1024,
      });
      expect(res.stderr).toBe('');
      expect(res.status).toBe(0);
      const py = JSON.parse(res.stdout) as { records: Array<Record<string, unknown>> };
      const ours = raw.map((b) => sessionEventToAvro(decodeSessionEvent(b)));
      expect(py.records).toEqual(ours);
    } finally {
      await runtime.stop();
    }
  });
});
