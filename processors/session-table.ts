import type { Session } from './session.js';

/** A session's place in the table's order. */
interface Slot {
  readonly id: string;
  session: Session;
  older: Slot | null;
  newer: Slot | null;
}

/**
 * A partition's sessions by id, least recently updated first: expiry and eviction scan from the
 * oldest, the changelog restores sessions in this order, checkpoints store it. The read side is a
 * Map's (get, has, size, keys, values, iteration in order); `touch` moves a session to the newest
 * end. Before, the Map's own insertion order was the order and every event moved its session by
 * delete + set — two more hash operations per event than a lookup and a splice, and a rehash of
 * the whole table every few thousand events (bench/README.md, eighth session).
 */
export class SessionTable implements Iterable<[string, Session]> {
  private readonly slots = new Map<string, Slot>();
  private oldestSlot: Slot | null = null;
  private newestSlot: Slot | null = null;

  static from(sessions: Iterable<Session>): SessionTable {
    const t = new SessionTable();
    for (const s of sessions) t.set(s.id, s);
    return t;
  }

  get size(): number {
    return this.slots.size;
  }

  get(id: string): Session | undefined {
    return this.slots.get(id)?.session;
  }

  has(id: string): boolean {
    return this.slots.has(id);
  }

  /** As Map#set: a new id goes to the newest end; an id already held keeps its place. */
  set(id: string, session: Session): this {
    const slot = this.slots.get(id);
    if (slot !== undefined) {
      slot.session = session;
      return this;
    }
    const added: Slot = { id, session, older: this.newestSlot, newer: null };
    if (this.newestSlot === null) this.oldestSlot = added;
    else this.newestSlot.newer = added;
    this.newestSlot = added;
    this.slots.set(id, added);
    return this;
  }

  delete(id: string): boolean {
    const slot = this.slots.get(id);
    if (slot === undefined) return false;
    this.unlink(slot);
    this.slots.delete(id);
    return true;
  }

  /** Moves the session held under `id` to the newest end (no-op for an id not held). */
  touch(id: string): void {
    const slot = this.slots.get(id);
    if (slot === undefined || slot === this.newestSlot) return;
    this.unlink(slot);
    slot.older = this.newestSlot;
    slot.newer = null;
    if (this.newestSlot === null) this.oldestSlot = slot;
    else this.newestSlot.newer = slot;
    this.newestSlot = slot;
  }

  /** The least recently updated session. */
  oldest(): Session | undefined {
    return this.oldestSlot?.session;
  }

  clear(): void {
    this.slots.clear();
    this.oldestSlot = this.newestSlot = null;
  }

  /**
   * Sessions oldest first. While iterating, the session just yielded may be deleted or touched (a
   * touched one comes again at the end, as with a Map); other sessions must not be deleted.
   */
  *values(): IterableIterator<Session> {
    for (const slot of this.slotsInOrder()) yield slot.session;
  }

  *keys(): IterableIterator<string> {
    for (const slot of this.slotsInOrder()) yield slot.id;
  }

  *entries(): IterableIterator<[string, Session]> {
    for (const slot of this.slotsInOrder()) yield [slot.id, slot.session];
  }

  [Symbol.iterator](): IterableIterator<[string, Session]> {
    return this.entries();
  }

  private *slotsInOrder(): IterableIterator<Slot> {
    for (let slot = this.oldestSlot; slot !== null; ) {
      // Taken before the yield: the caller may delete or move the slot it is given.
      const next = slot.newer;
      yield slot;
      slot = next;
    }
  }

  private unlink(slot: Slot): void {
    if (slot.older === null) this.oldestSlot = slot.newer;
    else slot.older.newer = slot.newer;
    if (slot.newer === null) this.newestSlot = slot.older;
    else slot.newer.older = slot.older;
  }
}
