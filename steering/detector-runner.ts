import type { Logger } from '../lib/logger.js';
import type { Bus, ConsumerBatch } from '../lib/bus/types.js';
import { CONSUMER_GROUPS, TOPICS } from '../lib/bus/topics.js';
import { decodeMetricsRecord } from '../processors/metrics-record.js';
import { createDetectorState, evaluate, observe, type DetectorConfigInput, type DetectorState } from './detector/index.js';
import type { SteeringService } from './service.js';

/**
 * The detector role's shell around the pure detector: consume qoe.metrics.v1 (fired windows and
 * their later deltas), feed observe(), evaluate windows once complete, submit decisions to the steering service.
 *
 * A window is complete when a later window has been seen (the processor emits windows in order per
 * partition), or, when nothing arrives for a window's length of wall time, up to the newest seen.
 */
export interface DetectorRunnerDeps {
  bus: Bus;
  steering: SteeringService;
  config: DetectorConfigInput;
  log: Logger;
  now: () => number;
  onDecision?: (action: string) => void;
}

export interface DetectorRunner {
  start(): Promise<void>;
  stop(): Promise<void>;
  state(): DetectorState;
}

export function createDetectorRunner(deps: DetectorRunnerDeps): DetectorRunner {
  const { bus, steering, log, now } = deps;
  const state = createDetectorState({ ...deps.config, initialSeq: steering.lastSeq() + 1 });
  const windowMs = state.config.windowMs;
  const consumer = bus.consumer({ groupId: CONSUMER_GROUPS.detector, topics: [TOPICS.metrics], fromBeginning: false });
  let newestEndMs = -Infinity;
  let lastRecordAtMs = 0;
  let timer: NodeJS.Timeout | undefined;

  function run(closedUpToMs: number): void {
    if (!Number.isFinite(closedUpToMs)) return;
    for (const d of evaluate(state, closedUpToMs, now())) {
      const outcome = steering.submit(d);
      deps.onDecision?.(d.action);
      log.info({ scope: d.scope, priority: d.priority, action: d.action, reason: d.reason, outcome: outcome.outcome }, 'steering decision');
    }
  }

  async function onBatch(batch: ConsumerBatch): Promise<void> {
    for (const r of batch.records) {
      const rec = decodeMetricsRecord(r.value);
      observe(state, rec);
      newestEndMs = Math.max(newestEndMs, Number(rec.window_start_ms) + windowMs);
    }
    lastRecordAtMs = now();
    run(newestEndMs - windowMs);
  }

  return {
    async start() {
      await consumer.run({ eachBatch: onBatch });
      timer = setInterval(() => {
        if (now() - lastRecordAtMs >= windowMs) run(newestEndMs);
      }, Math.max(250, Math.floor(windowMs / 4)));
      timer.unref();
    },
    async stop() {
      if (timer) clearInterval(timer);
      await consumer.close();
    },
    state: () => state,
  };
}
