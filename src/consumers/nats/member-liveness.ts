/**
 * Which members of a group are alive, judged without comparing clocks across machines: a member
 * rewrites its key every heartbeat, so its revision changes; a key whose revision this process saw
 * unchanged for `ttlMs` (on its own clock) belongs to a member that stopped. A key seen for the
 * first time counts as alive for `ttlMs` (a process that just started waits that long before
 * taking over partitions of a member that died before it came).
 */
export class MemberLiveness {
  readonly #ttlMs: number;
  readonly #clock: () => number;
  readonly #seen = new Map<string, { revision: number; changedAt: number }>();

  constructor(ttlMs: number, clock: () => number = Date.now) {
    this.#ttlMs = ttlMs;
    this.#clock = clock;
  }

  /** Records the revisions read now; returns the members alive (keys absent now are forgotten). */
  observe(revisions: ReadonlyMap<string, number>): Set<string> {
    const now = this.#clock();
    for (const member of [...this.#seen.keys()]) if (!revisions.has(member)) this.#seen.delete(member);
    const alive = new Set<string>();
    for (const [member, revision] of revisions) {
      const seen = this.#seen.get(member);
      if (seen === undefined || seen.revision !== revision)
        this.#seen.set(member, { revision, changedAt: now });
      if (now - this.#seen.get(member)!.changedAt < this.#ttlMs) alive.add(member);
    }
    return alive;
  }

  /** How long the member's key has not changed (0 when never seen). */
  silentFor(member: string): number {
    const seen = this.#seen.get(member);
    return seen === undefined ? 0 : this.#clock() - seen.changedAt;
  }
}
