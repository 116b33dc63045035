/**
 * Where decisions outlive the process: rows of qoe_steering_decisions (sql/002_steering.sql) and
 * records of qoe.steering.v1. Both can give back, on start, the current decision of every scope
 * plus the recent history that `?since=` resumes from.
 */
import { randomUUID } from 'node:crypto';
import type { Bus } from '../lib/bus/types.js';
import { TOPICS } from '../lib/bus/topics.js';
import type { Row, Store } from '../lib/store/types.js';
import { DECISION_SCHEMA_VERSION, type DecisionReason, type SteeringAction, type SteeringDecision } from './decision.js';
import { decodeDecision } from './codec.js';

export const DECISIONS_TABLE = 'qoe_steering_decisions';

interface DecisionRow extends Row {
  issued_at_ms: number;
  seq: number;
  id: string;
  country: string;
  asn: string;
  priority: string[];
  action: string;
  reason_metric: string;
  reason_cdn: string;
  reason_value: number;
  reason_baseline: number;
  reason_score: number;
  reason_window_start_ms: number;
  reason_window_ms: number;
  reason_detail: string;
  ttl_ms: number;
}

function finite(x: number): number {
  return Number.isFinite(x) ? x : 0;
}

export function decisionToRow(d: SteeringDecision, applied: boolean): Row {
  return {
    issued_at: new Date(d.issuedAtMs),
    issued_at_ms: d.issuedAtMs,
    seq: applied ? d.seq : 0,
    id: d.id,
    schema_version: d.version,
    country: d.scope.country,
    asn: d.scope.asn,
    priority: d.priority,
    action: d.action,
    reason_metric: d.reason.metric,
    reason_cdn: d.reason.cdn,
    reason_value: finite(d.reason.value),
    reason_baseline: finite(d.reason.baseline),
    reason_score: finite(d.reason.score),
    reason_window_start_ms: d.reason.windowStartMs,
    reason_window_ms: d.reason.windowMs,
    reason_detail: d.reason.detail,
    ttl_ms: d.ttlMs,
    applied: applied ? 1 : 0,
  };
}

export function rowToDecision(r: DecisionRow): SteeringDecision {
  return {
    version: DECISION_SCHEMA_VERSION,
    id: r.id,
    seq: Number(r.seq),
    issuedAtMs: Number(r.issued_at_ms),
    scope: { country: r.country, asn: r.asn },
    priority: r.priority,
    action: r.action as SteeringAction,
    reason: {
      metric: r.reason_metric as DecisionReason['metric'],
      cdn: r.reason_cdn,
      value: Number(r.reason_value),
      baseline: Number(r.reason_baseline),
      score: Number(r.reason_score),
      windowStartMs: Number(r.reason_window_start_ms),
      windowMs: Number(r.reason_window_ms),
      detail: r.reason_detail,
    },
    ttlMs: Number(r.ttl_ms),
  };
}

const COLUMNS = `issued_at_ms, seq, id, country, asn, priority, action, reason_metric, reason_cdn, reason_value,
  reason_baseline, reason_score, reason_window_start_ms, reason_window_ms, reason_detail, ttl_ms`;

/** What a restart starts from: the current decision of every scope, and the newest history in seq order. */
export interface Replayed {
  current: SteeringDecision[];
  history: SteeringDecision[];
}

/**
 * The last `historyLimit` applied decisions plus the current decision of every scope, in seq order.
 * Plain IN-subquery and ORDER BY/LIMIT: both run on 18.16.
 */
export async function replayFromStore(store: Store, historyLimit: number): Promise<Replayed> {
  const history = await store.query<DecisionRow>(
    `SELECT ${COLUMNS} FROM ${DECISIONS_TABLE} WHERE applied = 1 ORDER BY seq DESC LIMIT {limit:UInt32}`,
    { limit: historyLimit },
  );
  const current = await store.query<DecisionRow>(
    `SELECT ${COLUMNS} FROM ${DECISIONS_TABLE}
     WHERE applied = 1 AND seq IN (SELECT max(seq) FROM ${DECISIONS_TABLE} WHERE applied = 1 GROUP BY country, asn)`,
  );
  return { current: current.map(rowToDecision).sort(bySeq), history: history.map(rowToDecision).sort(bySeq) };
}

/**
 * Reads qoe.steering.v1 from the beginning with a throw-away consumer group until it has caught up,
 * keeping what it read. Bounded: only the newest `historyLimit` decisions plus each scope's current one.
 */
export async function replayFromBus(bus: Bus, historyLimit: number, timeoutMs: number, onUndecodable: (err: unknown) => void = () => undefined): Promise<Replayed> {
  const consumer = bus.consumer({ groupId: `qoe-steering-replay-${randomUUID()}`, topics: [TOPICS.steering], fromBeginning: true });
  const recent: SteeringDecision[] = [];
  const latest = new Map<string, SteeringDecision>();
  await consumer.run({
    async eachBatch(batch) {
      for (const rec of batch.records) {
        let d: SteeringDecision;
        try {
          d = decodeDecision(rec.value);
        } catch (err) {
          // A record no known schema reads: skipped (and reported), not retried forever.
          onUndecodable(err);
          continue;
        }
        recent.push(d);
        const key = `${d.scope.country}/${d.scope.asn}`;
        const prev = latest.get(key);
        if (prev === undefined || prev.seq < d.seq) latest.set(key, d);
        if (recent.length > 2 * historyLimit) recent.splice(0, recent.length - historyLimit);
      }
    },
  });
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const lag = await consumer.lag();
      if (lag.every((p) => p.lag === 0)) break;
      if (Date.now() > deadline) throw new Error(`steering replay from ${TOPICS.steering} did not catch up in ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    await consumer.close();
  }
  return { current: [...latest.values()].sort(bySeq), history: recent.slice(-historyLimit).sort(bySeq) };
}

function bySeq(a: SteeringDecision, b: SteeringDecision): number {
  return a.seq - b.seq;
}
