import type { Session } from './session.js';

interface Node {
  s: Session;
  prev: Node | null;
  next: Node | null;
  /** Deleted: an iteration about to step onto it passes over it. */
  gone: boolean;
}

/**
 * A partition's sessions by id, in the order they were last moved to the back (`touch`): least
 * recently updated first, where expiry and eviction look. As a Map kept that order, every event
 * deleted and re-inserted its session: two hash updates, and the deleted entries made V8 rebuild the
 * whole table every few ten thousand events (a 1 M-event run allocated ~55 MB of tables for it,
 * bench/kafka.ts (b)). Here the order is a doubly linked list beside the id lookup, and moving a
 * session to the back is four pointer writes.
 *
 * Iteration may delete or move the session it stands on (as in expiry); a moved one is not
 * visited again (a Map's iteration would visit it again at the end).
 */
export class SessionMap {
  private readonly nodes = new Map<string, Node>();
  private head: Node | null = null;
  private tail: Node | null = null;
  /** The node get() or set() last handed out: touch() after get() of the same session needs no lookup. */
  private last: Node | null = null;

  static from(sessions: Iterable<Session>): SessionMap {
    const m = new SessionMap();
    for (const s of sessions) m.set(s.id, s);
    return m;
  }

  get size(): number {
    return this.nodes.size;
  }

  get(id: string): Session | undefined {
    const n = this.nodes.get(id);
    if (n === undefined) return undefined;
    this.last = n;
    return n.s;
  }

  has(id: string): boolean {
    return this.nodes.has(id);
  }

  /** Replaces the session of a known id in place (its position kept, as Map#set); a new id goes to the back. */
  set(id: string, s: Session): this {
    const known = this.nodes.get(id);
    if (known !== undefined) {
      known.s = s;
      this.last = known;
      return this;
    }
    const n: Node = { s, prev: this.tail, next: null, gone: false };
    if (this.tail === null) this.head = n;
    else this.tail.next = n;
    this.tail = n;
    this.nodes.set(id, n);
    this.last = n;
    return this;
  }

  delete(id: string): boolean {
    const n = this.nodes.get(id);
    if (n === undefined) return false;
    this.nodes.delete(id);
    this.unlink(n);
    n.gone = true;
    if (this.last === n) this.last = null;
    return true;
  }

  /** Moves `s` (held here under s.id) to the back: the most recently updated. */
  touch(s: Session): void {
    const n = this.last !== null && this.last.s === s ? this.last : this.nodes.get(s.id);
    if (n === undefined || n === this.tail) return;
    this.unlink(n);
    n.prev = this.tail;
    n.next = null;
    if (this.tail === null) this.head = n;
    else this.tail.next = n;
    this.tail = n;
  }

  /** The least recently moved session. */
  oldest(): Session | undefined {
    return this.head?.s;
  }

  *values(): IterableIterator<Session> {
    for (const n of this.walk()) yield n.s;
  }

  *keys(): IterableIterator<string> {
    for (const n of this.walk()) yield n.s.id;
  }

  *entries(): IterableIterator<[string, Session]> {
    for (const n of this.walk()) yield [n.s.id, n.s];
  }

  [Symbol.iterator](): IterableIterator<[string, Session]> {
    return this.entries();
  }

  /**
   * The nodes front to back. The next node is taken before the current one is handed out, so the
   * loop may delete or move the current one; a next one deleted meanwhile is passed over.
   */
  private *walk(): IterableIterator<Node> {
    let n = this.head;
    while (n !== null) {
      const next = n.next;
      yield n;
      n = next;
      while (n !== null && n.gone) n = n.next;
    }
  }

  private unlink(n: Node): void {
    if (n.prev === null) this.head = n.next;
    else n.prev.next = n.next;
    if (n.next === null) this.tail = n.prev;
    else n.next.prev = n.prev;
    // next is left as it was: an iteration about to step onto a deleted node goes on from it.
  }
}
