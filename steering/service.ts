/**
 * The steering service: the one writer of the decision log. It sequences decisions (the detector's
 * `seq` is replaced: seq is dense over applied decisions of a deployment), applies them in memory at
 * once (subscribers, manifests), then persists them in order, batched: Avro on qoe.steering.v1 and a
 * row in qoe_steering_decisions. On start it replays the store (else the topic) so that current
 * decisions and the resumable history survive restarts. Kill switch and TTL expiry issue decisions
 * like the detector does, so every consumer sees them the same way.
 */
import { randomUUID } from 'node:crypto';
import type { Bus, BusProducer } from '../lib/bus/types.js';
import { TOPICS } from '../lib/bus/topics.js';
import type { Logger } from '../lib/logger.js';
import type { Store } from '../lib/store/types.js';
import { encodeDecision, scopeKey, validateDecision } from './codec.js';
import type { SteeringConfig } from './config.js';
import { DECISION_SCHEMA_VERSION, type DecisionReason, type SteeringAction, type SteeringDecision, type SteeringScope } from './decision.js';
import { DECISIONS_TABLE, decisionToRow, replayFromBus, replayFromStore, type Replayed } from './persistence.js';
import { createDecisionLog, isExpired, isNeutralAction, effectiveDecision, type SinceResult } from './registry.js';

export interface SteeringServiceDeps {
  bus?: Bus;
  store?: Store;
  log: Logger;
  now: () => number;
  config: SteeringConfig;
  /** Decisions kept for `?since=` resume. Default 10 000. */
  historyCapacity?: number;
  /** Scopes with a current decision. Default 100 000. */
  maxScopes?: number;
  /** How often expired decisions are reverted to neutral (ms); 0 = only via expireNow(). Default 1000. */
  expirySweepMs?: number;
  /** Decisions waiting to be persisted before the oldest is dropped (and counted). Default 100 000. */
  maxPendingWrites?: number;
  /** Longest the replay from the topic may take (ms). Default 30 000. */
  replayTimeoutMs?: number;
}

/** What the detector hands over; the service fills in version, seq, and (when absent) id and issuedAtMs. */
export type DecisionInput = Omit<SteeringDecision, 'version' | 'seq' | 'id' | 'issuedAtMs'> &
  Partial<Pick<SteeringDecision, 'version' | 'seq' | 'id' | 'issuedAtMs'>>;

export type SubmitOutcome =
  | { outcome: 'applied'; decision: SteeringDecision }
  | { outcome: 'suppressed'; decision: SteeringDecision; reason: 'kill_switch' }
  | { outcome: 'rejected'; message: string };

export interface KillSwitchState {
  enabled: boolean;
  actor: string;
  changedAtMs: number;
}

export interface SteeringStats {
  lastSeq: number;
  oldestSeq: number;
  scopes: number;
  history: number;
  applied: number;
  suppressed: number;
  rejected: number;
  expired: number;
  evictedScopes: number;
  pendingWrites: number;
  /** Decision writes (per target: bus, store) that failed. */
  persistFailures: number;
  /** Decisions dropped from the write queue at its bound. */
  droppedWrites: number;
  subscribers: number;
}

export interface SteeringService {
  readonly config: SteeringConfig;
  /** Replays the store (else the topic), applies the configured kill switch, starts the expiry sweep. */
  start(): Promise<void>;
  /** Stops the sweep and waits for pending writes. */
  stop(): Promise<void>;
  /** Sequences and applies a detector decision (synchronously); persistence follows in order. */
  submit(input: DecisionInput): SubmitOutcome;
  /** Flips the kill switch; turning it on issues a kill_switch decision for every known scope (returned). */
  setKillSwitch(enabled: boolean, actor: string): SteeringDecision[];
  killSwitch(): KillSwitchState;
  /** Current decisions, one per scope, in seq order. */
  current(): SteeringDecision[];
  /** The decision a client in `scope` is under now (ASN first, then country), expired ones flagged. */
  lookup(scope: SteeringScope): { decision: SteeringDecision; expired: boolean } | undefined;
  lastSeq(): number;
  since(seq: number): SinceResult;
  /** Called synchronously, in seq order, for every applied decision. Returns the unsubscribe function. */
  subscribe(listener: (d: SteeringDecision) => void): () => void;
  /** Reverts every expired decision to neutral now (the sweep calls this). */
  expireNow(): SteeringDecision[];
  /** Resolves once everything submitted so far is persisted (or has failed to be). */
  flush(): Promise<void>;
  stats(): SteeringStats;
}

const PERSIST_BATCH = 1000;

function operatorReason(nowMs: number, detail: string): DecisionReason {
  return { metric: 'operator', cdn: '', value: 0, baseline: 0, score: 0, windowStartMs: nowMs, windowMs: 0, detail };
}

export function createSteeringService(deps: SteeringServiceDeps): SteeringService {
  const { config, now } = deps;
  const log = deps.log.child({ component: 'steering' });
  const capacity = deps.historyCapacity ?? 10_000;
  const maxPending = deps.maxPendingWrites ?? 100_000;
  const decisions = createDecisionLog({ capacity, maxScopes: deps.maxScopes ?? 100_000 });
  const listeners = new Set<(d: SteeringDecision) => void>();
  let kill: KillSwitchState = { enabled: config.killSwitch, actor: 'config', changedAtMs: now() };
  let producer: BusProducer | undefined;
  let sweep: NodeJS.Timeout | undefined;
  const counters = { applied: 0, suppressed: 0, rejected: 0, expired: 0, evictedScopes: 0, persistFailures: 0, droppedWrites: 0 };

  // Persistence queue: applied order, bounded, drained by one loop at a time.
  const pending: Array<{ d: SteeringDecision; applied: boolean }> = [];
  let draining: Promise<void> | undefined;

  function enqueue(d: SteeringDecision, applied: boolean): void {
    if (deps.bus === undefined && deps.store === undefined) return;
    pending.push({ d, applied });
    if (pending.length > maxPending) {
      pending.shift();
      counters.droppedWrites += 1;
    }
    kick();
  }

  function kick(): void {
    if (draining !== undefined) return;
    draining = drain().finally(() => {
      draining = undefined;
      // Something enqueued between the loop's last check and this callback.
      if (pending.length > 0) kick();
    });
  }

  async function drain(): Promise<void> {
    while (pending.length > 0) {
      const batch = pending.splice(0, PERSIST_BATCH);
      const appliedOnes = batch.filter((b) => b.applied).map((b) => b.d);
      const writes: Array<{ target: 'bus' | 'store'; count: number; done: Promise<void> }> = [];
      if (producer !== undefined && appliedOnes.length > 0) {
        const messages = appliedOnes.map((d) => ({ key: scopeKey(d.scope), value: encodeDecision(d), timestampMs: d.issuedAtMs }));
        writes.push({ target: 'bus', count: appliedOnes.length, done: producer.send(TOPICS.steering, messages) });
      }
      if (deps.store !== undefined) {
        writes.push({ target: 'store', count: batch.length, done: deps.store.insert(DECISIONS_TABLE, batch.map((b) => decisionToRow(b.d, b.applied))) });
      }
      const results = await Promise.allSettled(writes.map((w) => w.done));
      results.forEach((r, i) => {
        const w = writes[i];
        if (r.status === 'fulfilled' || w === undefined) return;
        counters.persistFailures += w.count;
        log.error({ err: r.reason, target: w.target, decisions: w.count }, 'steering decisions not persisted');
      });
    }
  }

  function apply(d: SteeringDecision): SteeringDecision {
    const evicted = decisions.append(d);
    counters.applied += 1;
    if (evicted !== undefined) {
      counters.evictedScopes += 1;
      log.warn({ country: evicted.country, asn: evicted.asn }, 'steering scope dropped at the scope bound');
    }
    enqueue(d, true);
    for (const listener of listeners) {
      try {
        listener(d);
      } catch (err) {
        log.error({ err }, 'steering subscriber threw');
      }
    }
    return d;
  }

  function issue(scope: SteeringScope, action: SteeringAction, reason: DecisionReason): SteeringDecision {
    const issuedAtMs = now();
    return apply({
      version: DECISION_SCHEMA_VERSION, id: randomUUID(), seq: decisions.lastSeq() + 1, issuedAtMs,
      scope: { ...scope }, priority: [...config.neutralPriority], action, reason, ttlMs: 0,
    });
  }

  function killAll(actor: string): SteeringDecision[] {
    const nowMs = now();
    return decisions
      .current()
      .filter((d) => d.action !== 'kill_switch')
      .map((d) => issue(d.scope, 'kill_switch', operatorReason(nowMs, `kill switch on (${actor})`)));
  }

  function restore(r: Replayed, source: string): void {
    decisions.restore(r.current, r.history);
    log.info({ source, scopes: r.current.length, history: r.history.length, lastSeq: decisions.lastSeq() }, 'steering decisions replayed');
  }

  const service: SteeringService = {
    config,
    async start() {
      if (deps.bus !== undefined) {
        await deps.bus.createTopics([{ topic: TOPICS.steering, partitions: 1 }]).catch((err: unknown) => {
          log.warn({ err, topic: TOPICS.steering }, 'steering topic not created (exists with another layout?)');
        });
        producer = deps.bus.producer();
      }
      if (deps.store !== undefined) restore(await replayFromStore(deps.store, capacity), 'store');
      else if (deps.bus !== undefined) restore(
          await replayFromBus(deps.bus, capacity, deps.replayTimeoutMs ?? 30_000, (err) => log.warn({ err, topic: TOPICS.steering }, 'undecodable steering record skipped')),
          'bus',
        );
      if (kill.enabled) killAll(kill.actor);
      service.expireNow();
      const every = deps.expirySweepMs ?? 1000;
      if (every > 0) {
        sweep = setInterval(() => service.expireNow(), every);
        sweep.unref();
      }
    },
    async stop() {
      if (sweep !== undefined) clearInterval(sweep);
      sweep = undefined;
      await service.flush();
      await producer?.close();
      producer = undefined;
    },
    submit(input) {
      const candidate = {
        ...input,
        version: DECISION_SCHEMA_VERSION,
        id: input.id ?? randomUUID(),
        seq: decisions.lastSeq() + 1,
        issuedAtMs: input.issuedAtMs ?? now(),
        scope: { country: input.scope.country.toUpperCase(), asn: input.scope.asn },
      };
      const checked = validateDecision(candidate);
      if (!checked.ok) {
        counters.rejected += 1;
        log.warn({ message: checked.message }, 'steering decision rejected');
        return { outcome: 'rejected', message: checked.message };
      }
      if (kill.enabled) {
        // Recorded for audit (applied = 0, seq 0), never served: seq stays dense over applied decisions.
        const d = { ...checked.decision, seq: 0 };
        counters.suppressed += 1;
        enqueue(d, false);
        return { outcome: 'suppressed', decision: d, reason: 'kill_switch' };
      }
      return { outcome: 'applied', decision: apply(checked.decision) };
    },
    setKillSwitch(enabled, actor) {
      if (enabled === kill.enabled) return [];
      kill = { enabled, actor, changedAtMs: now() };
      log.warn({ enabled, actor }, 'steering kill switch changed');
      return enabled ? killAll(actor) : [];
    },
    killSwitch: () => ({ ...kill }),
    current: () => decisions.current(),
    lookup: (scope) => effectiveDecision(decisions, scope, now()),
    lastSeq: () => decisions.lastSeq(),
    since: (seq) => decisions.since(seq),
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    expireNow() {
      const nowMs = now();
      const out: SteeringDecision[] = [];
      for (const d of decisions.current()) {
        if (isNeutralAction(d) || !isExpired(d, nowMs)) continue;
        counters.expired += 1;
        out.push(issue(d.scope, 'neutral', operatorReason(nowMs, `ttl expired for decision ${d.id} (seq ${d.seq})`)));
      }
      return out;
    },
    async flush() {
      while (draining !== undefined) await draining;
    },
    stats: () => ({
      ...counters,
      lastSeq: decisions.lastSeq(),
      oldestSeq: decisions.oldestSeq(),
      ...decisions.size(),
      pendingWrites: pending.length,
      subscribers: listeners.size,
    }),
  };
  return service;
}
