import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { emptyDims } from '../schemas/events.js';
import { newSession, type Session } from './session.js';
import { SessionMap } from './session-map.js';

/**
 * SessionMap against what it replaces: a Map kept in least-recently-updated order by deleting and
 * re-inserting a session on each update.
 */

const session = (id: string): Session => newSession(id, emptyDims(), 1000, 0);

type Op =
  | { op: 'add'; id: string }
  | { op: 'get'; id: string }
  | { op: 'touch'; id: string }
  | { op: 'replace'; id: string }
  | { op: 'delete'; id: string }
  | { op: 'expireFront'; n: number };

const id = fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g', 'h');
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant('add' as const), id }),
  fc.record({ op: fc.constant('get' as const), id }),
  fc.record({ op: fc.constant('touch' as const), id }),
  fc.record({ op: fc.constant('replace' as const), id }),
  fc.record({ op: fc.constant('delete' as const), id }),
  fc.record({ op: fc.constant('expireFront' as const), n: fc.integer({ min: 0, max: 4 }) }),
);

describe('SessionMap', () => {
  it('holds the same sessions in the same order as a Map updated by delete and re-insert, under any operations', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
        const model = new Map<string, Session>();
        const map = new SessionMap();
        for (const o of ops) {
          switch (o.op) {
            case 'add':
              if (!model.has(o.id)) {
                const s = session(o.id);
                model.set(o.id, s);
                map.set(o.id, s);
              }
              break;
            case 'get':
              expect(map.get(o.id)).toBe(model.get(o.id));
              break;
            case 'touch': {
              const s = map.get(o.id);
              if (s !== undefined) {
                model.delete(o.id);
                model.set(o.id, s);
                map.touch(s);
              }
              break;
            }
            case 'replace':
              // A known id keeps its place, as Map#set does.
              if (model.has(o.id)) {
                const s = session(o.id);
                model.set(o.id, s);
                map.set(o.id, s);
              }
              break;
            case 'delete':
              expect(map.delete(o.id)).toBe(model.delete(o.id));
              break;
            case 'expireFront': {
              // As advance() expires: walk from the front, deleting the session it stands on.
              let left = o.n;
              for (const s of map.values()) {
                if (left-- === 0) break;
                map.delete(s.id);
              }
              left = o.n;
              for (const k of [...model.keys()]) {
                if (left-- === 0) break;
                model.delete(k);
              }
              break;
            }
          }
          expect(map.size).toBe(model.size);
          expect([...map.keys()]).toEqual([...model.keys()]);
          expect([...map.values()]).toEqual([...model.values()]);
          expect(map.oldest()).toBe(model.values().next().value);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('touch() of a session got just before moves that session, not the one got earlier', () => {
    const m = SessionMap.from(['a', 'b', 'c'].map(session));
    const a = m.get('a') as Session;
    m.get('b');
    m.touch(a);
    expect([...m.keys()]).toEqual(['b', 'c', 'a']);
    m.delete('c');
    m.touch(m.get('b') as Session);
    expect([...m.keys()]).toEqual(['a', 'b']);
    expect([...m]).toEqual([['a', a], ['b', m.get('b')]]);
  });

  it('a walk goes on past a session deleted ahead of it', () => {
    const m = SessionMap.from(['a', 'b', 'c', 'd'].map(session));
    const seen: string[] = [];
    for (const s of m.values()) {
      seen.push(s.id);
      if (s.id === 'a') m.delete('b');
    }
    expect(seen).toEqual(['a', 'c', 'd']);
  });
});
