/**
 * Steering detector evaluation: a simulated week of steady traffic (every decision is false) and a
 * week with a labelled incident every 3 hours, over 5 country scopes × 3 CDNs of 10-s windows.
 * Usage: npx tsx bench/steering-eval.ts [seed…]   (default seed 1; each seed = two simulated weeks,
 * about 1–2 minutes each on a 2-core machine). The incident week of seed s uses seed s + 1000.
 */
import os from 'node:os';
import { DEFAULT_DETECTOR_CONFIG } from '../steering/detector/index.js';
import { evaluateScenario } from '../steering/evaluation/harness.js';
import { formatReport } from '../steering/evaluation/report.js';
import { incidentWeek, steadyWeek } from '../steering/evaluation/scenarios.js';

const seeds = process.argv.slice(2).map(Number).filter(Number.isFinite);
const cpu = os.cpus()[0]?.model ?? 'unknown cpu';
console.log(`# steering detector evaluation — node ${process.version}, ${cpu} × ${os.cpus().length}`);
console.log('defaults: DEFAULT_DETECTOR_CONFIG (steering/detector/config.ts)\n');
for (const seed of seeds.length > 0 ? seeds : [1]) {
  for (const sc of [steadyWeek(seed), incidentWeek(seed + 1000)]) {
    console.log(formatReport(evaluateScenario(sc, {}, DEFAULT_DETECTOR_CONFIG.cooldownMs)));
    console.log('');
  }
}
