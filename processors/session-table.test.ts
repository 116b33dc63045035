import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { emptyDims } from '../schemas/events.js';
import { newSession, type Session } from './session.js';
import { SessionTable } from './session-table.js';

const session = (id: string): Session => newSession(id, emptyDims(), 0, 0);

/** What the table replaces: a Map whose insertion order is the order, moved by delete + set. */
class MapModel {
  readonly m = new Map<string, Session>();
  set(id: string, s: Session): void {
    this.m.set(id, s);
  }
  touch(id: string): void {
    const s = this.m.get(id);
    if (s === undefined) return;
    this.m.delete(id);
    this.m.set(id, s);
  }
  delete(id: string): boolean {
    return this.m.delete(id);
  }
}

type Op = { op: 'set' | 'touch' | 'delete' | 'get'; id: string };
const ids = fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g');
const ops = fc.array(fc.record({ op: fc.constantFrom('set', 'touch', 'delete', 'get') as fc.Arbitrary<Op['op']>, id: ids }), { maxLength: 80 });

describe('SessionTable', () => {
  it('holds and orders sessions as a Map moved by delete + set does, after any operations', () => {
    fc.assert(fc.property(ops, (list) => {
      const table = new SessionTable();
      const model = new MapModel();
      for (const { op, id } of list) {
        if (op === 'set') {
          const s = session(id);
          table.set(id, s);
          model.set(id, s);
        } else if (op === 'touch') {
          table.touch(id);
          model.touch(id);
        } else if (op === 'delete') {
          expect(table.delete(id)).toBe(model.delete(id));
        } else {
          expect(table.get(id)).toBe(model.m.get(id));
          expect(table.has(id)).toBe(model.m.has(id));
        }
        expect(table.size).toBe(model.m.size);
        expect(table.oldest()).toBe(model.m.values().next().value);
      }
      expect([...table.keys()]).toEqual([...model.m.keys()]);
      expect([...table.values()]).toEqual([...model.m.values()]);
      expect([...table]).toEqual([...model.m]);
    }), { numRuns: 2000 });
  });

  it('lets an iteration delete or touch the session it is given, as a Map does', () => {
    const table = SessionTable.from(['a', 'b', 'c', 'd', 'e'].map(session));
    const model = new MapModel();
    for (const id of ['a', 'b', 'c', 'd', 'e']) model.set(id, table.get(id) as Session);
    const seenTable: string[] = [];
    for (const s of table.values()) {
      seenTable.push(s.id);
      if (s.id === 'b' || s.id === 'd') table.delete(s.id);
      if (s.id === 'a' && seenTable.length === 1) table.touch(s.id);
    }
    const seenModel: string[] = [];
    for (const s of model.m.values()) {
      seenModel.push(s.id);
      if (s.id === 'b' || s.id === 'd') model.delete(s.id);
      if (s.id === 'a' && seenModel.length === 1) model.touch(s.id);
    }
    expect(seenTable).toEqual(seenModel);
    expect([...table.keys()]).toEqual([...model.m.keys()]);
    table.clear();
    expect([table.size, table.oldest(), [...table.keys()]]).toEqual([0, undefined, []]);
  });
});
