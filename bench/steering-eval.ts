/**
 * Steering detector evaluation: a simulated week of steady traffic (every decision is false) and a
 * week with a labelled incident every 3 hours, over 5 country scopes × 3 CDNs of 10-s windows.
 * Usage: npx tsx bench/steering-eval.ts [seed…]   (default seed 1; each seed = two simulated weeks,
 * about 1–2 minutes each on a 2-core machine). The incident week of seed s uses seed s + 1000.
 * With several seeds, a last table pools the incidents of every incident week.
 */
import os from 'node:os';
import { DEFAULT_DETECTOR_CONFIG } from '../steering/detector/index.js';
import { evaluateScenario, type IncidentOutcome } from '../steering/evaluation/harness.js';
import { formatIncidentTable, formatReport } from '../steering/evaluation/report.js';
import { incidentWeek, steadyWeek } from '../steering/evaluation/scenarios.js';

const seeds = process.argv.slice(2).map(Number).filter(Number.isFinite);
const cpu = os.cpus()[0]?.model ?? 'unknown cpu';
console.log(`# steering detector evaluation — node ${process.version}, ${cpu} × ${os.cpus().length}`);
console.log('defaults: DEFAULT_DETECTOR_CONFIG (steering/detector/config.ts)\n');
const pooled: IncidentOutcome[] = [];
const run = seeds.length > 0 ? seeds : [1];
for (const seed of run) {
  for (const sc of [steadyWeek(seed), incidentWeek(seed + 1000)]) {
    const r = evaluateScenario(sc, {}, DEFAULT_DETECTOR_CONFIG.cooldownMs);
    pooled.push(...r.incidents);
    console.log(formatReport(r));
    console.log('');
  }
}
if (run.length > 1) console.log(`## incidents of all ${run.length} incident weeks\n\n${formatIncidentTable(pooled)}`);
