import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { countsOf, emptyAcc, type WindowAcc } from './accumulator.js';
import type { PartitionState } from './partition.js';
import { SessionMap } from './session-map.js';
import { internSession, measuredFields, upgradeSession, withBookkeeping, type Session } from './session.js';

/**
 * Processor state checkpoints. The embedded runtime writes one file per input partition on a graceful
 * stop (after draining the bus) and reads it back at start, so sessions and open windows survive a
 * restart. JSON keeps it inspectable; Maps become entry arrays.
 */
export interface PartitionSnapshot {
  version: 1;
  partition: number;
  maxTsMs: number | null;
  state: unknown;
}

export type AccJson = Omit<WindowAcc, 'vstHist' | 'ttfbHist' | 'bitrateMs' | 'errors'> & {
  vstHist: Array<[number, number]>;
  ttfbHist: Array<[number, number]>;
  bitrateMs: Array<[number, number]>;
  errors: Array<[string, number]>;
};

export function accToJson(a: WindowAcc): AccJson {
  return { ...a, vstHist: [...a.vstHist], ttfbHist: [...a.ttfbHist], bitrateMs: [...a.bitrateMs], errors: [...a.errors] };
}

export function accFromJson(j: AccJson): WindowAcc {
  return { ...emptyAcc(), ...j, vstHist: new Map(j.vstHist), ttfbHist: countsOf(j.ttfbHist), bitrateMs: new Map(j.bitrateMs), errors: countsOf(j.errors) };
}

type TableJson = Array<[number, Array<[string, AccJson]>]>;

function tableToJson(t: Map<number, Map<string, WindowAcc>>): TableJson {
  return [...t].map(([w, m]) => [w, [...m].map(([k, a]) => [k, accToJson(a)] as [string, AccJson])]);
}

function tableFromJson(j: TableJson): Map<number, Map<string, WindowAcc>> {
  return new Map(j.map(([w, m]) => [w, new Map(m.map(([k, a]) => [k, accFromJson(a)]))]));
}

export function serializePartition(ps: PartitionState): unknown {
  return {
    sessions: [...ps.sessions.values()].map(measuredFields),
    open: tableToJson(ps.open),
    corrections: tableToJson(ps.corrections),
    firedBeforeMs: Number.isFinite(ps.firedBeforeMs) ? ps.firedBeforeMs : null,
    closedBeforeMs: Number.isFinite(ps.closedBeforeMs) ? ps.closedBeforeMs : null,
    counters: ps.counters,
  };
}

export function deserializePartition(j: unknown): PartitionState {
  const o = j as { sessions: Session[]; open: TableJson; corrections: TableJson; firedBeforeMs?: number | null; closedBeforeMs: number | null; counters: PartitionState['counters'] };
  const closedBeforeMs = o.closedBeforeMs ?? -Infinity;
  return {
    sessions: SessionMap.from(o.sessions.map((s) => withBookkeeping(internSession(upgradeSession(s)), -1, false))),
    open: tableFromJson(o.open),
    corrections: tableFromJson(o.corrections),
    // A checkpoint from before on-time firing: nothing fired beyond what had closed.
    firedBeforeMs: o.firedBeforeMs ?? closedBeforeMs,
    closedBeforeMs,
    dirtyAccs: null,
    changed: null,
    counters: o.counters,
  };
}

export interface CheckpointStore {
  load(partition: number): Promise<PartitionSnapshot | null>;
  save(snapshot: PartitionSnapshot): Promise<void>;
  /** Called once a snapshot is loaded: a crash after this must not replay the same state twice. */
  remove(partition: number): Promise<void>;
}

export function createFileCheckpointStore(dir: string): CheckpointStore {
  const file = (p: number): string => join(dir, `processor-p${p}.json`);
  return {
    async load(partition) {
      try {
        return JSON.parse(await readFile(file(partition), 'utf8')) as PartitionSnapshot;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw err;
      }
    },
    async save(snapshot) {
      await mkdir(dir, { recursive: true });
      const tmp = `${file(snapshot.partition)}.tmp`;
      await writeFile(tmp, JSON.stringify(snapshot));
      await rename(tmp, file(snapshot.partition));
    },
    async remove(partition) {
      await rm(file(partition), { force: true });
    },
  };
}
