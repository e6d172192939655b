/** The name of the group protocol every Gantry Kafka consumer joins with; a group only forms on a shared name. */
export const STICKY_PROTOCOL = 'gantry-sticky';

/**
 * What a member tells the group when it joins: the partitions it holds now, and among them the busy ones (a delivery
 * in hand, or settled work not yet committed). Sent as the subscription's user data.
 */
export interface Ownership {
  owned: Record<string, number[]>;
  busy: Record<string, number[]>;
  /**
   * Every slot of the member is taken by a handler that outlived the claim timeout: it cannot take any message, so
   * it should hold no partition while another member can. Kafka's Java client leaves the group in the same case
   * (`max.poll.interval.ms`).
   */
  stalled?: boolean;
}

/** One member as the group leader sees it (structurally the client's `ExtendedGroupProtocolSubscription`). */
export interface AssignerMember {
  topics?: string[];
  metadata?: Buffer | string | null;
}

/** The part of the cluster metadata the assigner reads. */
export interface AssignerMetadata {
  topics: ReadonlyMap<string, { partitionsCount: number }>;
}

/** The partitions given to one member (structurally the client's `GroupPartitionsAssignments`). */
export interface MemberAssignment {
  memberId: string;
  assignments: Map<string, { topic: string; partitions: number[] }>;
}

/** Encodes a member's {@link Ownership} as the user data of its group subscription. */
export function encodeOwnership(ownership: Ownership): Buffer {
  return Buffer.from(JSON.stringify({ v: 1, ...ownership }));
}

/** Reads what {@link encodeOwnership} wrote; anything else (another client, garbage) reads as owning nothing. */
export function decodeOwnership(data: Buffer | string | null | undefined): Ownership {
  const none: Ownership = { owned: {}, busy: {} };
  if (data === null || data === undefined || data.length === 0) return none;
  try {
    const parsed = JSON.parse(typeof data === 'string' ? data : data.toString('utf8')) as Partial<Ownership> & {
      v?: number;
    };
    if (parsed.v !== 1) return none;
    const ownership: Ownership = { owned: partitionsByTopic(parsed.owned), busy: partitionsByTopic(parsed.busy) };
    if (parsed.stalled === true) ownership.stalled = true;
    return ownership;
  } catch {
    return none;
  }
}

/**
 * The partition assigner of Gantry's Kafka consumers, run by the group leader at every rebalance. Each topic is
 * split evenly between the members subscribed to it (counts differ by at most one), and a member keeps what it
 * already holds as far as its share allows, busy partitions first.
 *
 * Why not round-robin: Kafka cannot count deliveries. A partition that moves while a delivery is in hand is read
 * again by its new owner from the committed offset, and the message arrives as a first attempt. Keeping busy
 * partitions where they are lets the adapter's claim timeout hand a stuck message on through the retry topic with its
 * attempt counted, and spares the duplicates a reshuffle causes. A member holding more busy partitions than its
 * share still gives the surplus up, so a new member always gets work. A stalled member (see {@link Ownership})
 * gets nothing while a member that is not stalled reads the topic.
 *
 * @param _current - the leader's member id (unused: the plan depends on the members only)
 * @param topics - the leader's topics, used for members that do not say what they subscribe to
 */
export function stickyAssigner(
  _current: string,
  members: ReadonlyMap<string, AssignerMember>,
  topics: ReadonlySet<string>,
  metadata: AssignerMetadata,
): MemberAssignment[] {
  const ids = [...members.keys()].sort();
  const subscribed = new Map(ids.map((id) => [id, new Set(members.get(id)?.topics ?? topics)]));
  const ownership = new Map(ids.map((id) => [id, decodeOwnership(members.get(id)?.metadata)]));
  const result = new Map(ids.map((id) => [id, new Map<string, { topic: string; partitions: number[] }>()]));

  const allTopics = new Set<string>();
  for (const set of subscribed.values()) for (const topic of set) allTopics.add(topic);
  for (const topic of [...allTopics].sort()) {
    const count = metadata.topics.get(topic)?.partitionsCount;
    if (count === undefined || count <= 0) continue;
    const holders = ids
      .filter((id) => subscribed.get(id)?.has(topic))
      .map((id) => {
        const own = ownership.get(id) as Ownership;
        return { id, owned: own.owned[topic] ?? [], busy: own.busy[topic] ?? [], stalled: own.stalled === true };
      });
    const able = holders.filter((holder) => !holder.stalled);
    for (const [id, partitions] of planTopic(count, able.length > 0 ? able : holders)) {
      if (partitions.length > 0) result.get(id)?.set(topic, { topic, partitions: partitions.sort((a, b) => a - b) });
    }
  }
  return ids.map((memberId) => ({
    memberId,
    assignments: result.get(memberId) as Map<string, { topic: string; partitions: number[] }>,
  }));
}

interface Holder {
  id: string;
  owned: number[];
  busy: number[];
  stalled: boolean;
}

/** Splits the `count` partitions of one topic between `holders` (sorted by id), keeping what they hold where fair. */
function planTopic(count: number, holders: Holder[]): Map<string, number[]> {
  const valid = (p: number) => Number.isInteger(p) && p >= 0 && p < count;
  const candidates = holders.map((holder) => {
    const owned = new Set(holder.owned.filter(valid));
    const busy = [...new Set(holder.busy)].filter((p) => owned.has(p)).sort((a, b) => a - b);
    const rest = [...owned].filter((p) => !busy.includes(p)).sort((a, b) => a - b);
    return { id: holder.id, busy, rest };
  });

  // Shares differ by one at most; the larger ones go to the members with the most to keep (busy first). The sort is
  // stable, so ties keep the id order and every leader computes the same plan.
  const base = Math.floor(count / candidates.length);
  let larger = count % candidates.length;
  const order = [...candidates].sort(
    (a, b) => b.busy.length - a.busy.length || b.busy.length + b.rest.length - (a.busy.length + a.rest.length),
  );
  const share = new Map<string, number>();
  for (const candidate of order) {
    share.set(candidate.id, base + (larger > 0 ? 1 : 0));
    if (larger > 0) larger--;
  }

  const plan = new Map(candidates.map((c) => [c.id, [] as number[]]));
  const taken = new Set<number>();
  for (const pass of ['busy', 'rest'] as const) {
    for (const candidate of order) {
      const mine = plan.get(candidate.id) as number[];
      for (const partition of candidate[pass]) {
        if (mine.length >= (share.get(candidate.id) as number)) break;
        if (taken.has(partition)) continue;
        taken.add(partition);
        mine.push(partition);
      }
    }
  }
  for (let partition = 0; partition < count; partition++) {
    if (taken.has(partition)) continue;
    let emptiest: string | undefined;
    for (const candidate of order) {
      const size = (plan.get(candidate.id) as number[]).length;
      if (size >= (share.get(candidate.id) as number)) continue;
      if (emptiest === undefined || size < (plan.get(emptiest) as number[]).length) emptiest = candidate.id;
    }
    // The shares add up to `count`, so some member is always below its share here.
    if (emptiest !== undefined) (plan.get(emptiest) as number[]).push(partition);
  }
  return plan;
}

function partitionsByTopic(value: unknown): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  if (value === null || typeof value !== 'object') return out;
  for (const [topic, partitions] of Object.entries(value)) {
    if (Array.isArray(partitions)) out[topic] = partitions.filter((p): p is number => Number.isInteger(p));
  }
  return out;
}
