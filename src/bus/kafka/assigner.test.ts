import { describe, expect, it } from 'vitest';
import { type AssignerMember, decodeOwnership, encodeOwnership, type Ownership, stickyAssigner } from './assigner.ts';

const metadata = {
  topics: new Map([
    ['orders', { partitionsCount: 6 }],
    ['orders.retry.billing', { partitionsCount: 6 }],
  ]),
};
const topics = new Set(['orders', 'orders.retry.billing']);

function member(ownership: Partial<Ownership> = {}, subscribed: string[] = [...topics]): AssignerMember {
  return { topics: subscribed, metadata: encodeOwnership({ owned: {}, busy: {}, ...ownership }) };
}

function plan(members: Record<string, AssignerMember>): Record<string, Record<string, number[]>> {
  const out: Record<string, Record<string, number[]>> = {};
  for (const { memberId, assignments } of stickyAssigner('any', new Map(Object.entries(members)), topics, metadata)) {
    out[memberId] = Object.fromEntries([...assignments.values()].map((a) => [a.topic, a.partitions]));
  }
  return out;
}

function everyPartitionOnce(result: Record<string, Record<string, number[]>>, topic: string, count: number): void {
  const all = Object.values(result).flatMap((byTopic) => byTopic[topic] ?? []);
  expect(all.sort((a, b) => a - b)).toEqual([...Array(count).keys()]);
}

describe('stickyAssigner', () => {
  it('splits every topic evenly between new members', () => {
    const result = plan({ a: member(), b: member() });
    expect(result.a?.orders).toHaveLength(3);
    expect(result.b?.orders).toHaveLength(3);
    expect(result.a?.['orders.retry.billing']).toHaveLength(3);
    everyPartitionOnce(result, 'orders', 6);
    everyPartitionOnce(result, 'orders.retry.billing', 6);
  });

  it('lets a member keep a busy partition when another member joins', () => {
    // a held everything; partition 5 has a delivery in hand.
    const all = { orders: [0, 1, 2, 3, 4, 5], 'orders.retry.billing': [0, 1, 2, 3, 4, 5] };
    const result = plan({ a: member({ owned: all, busy: { orders: [5] } }), b: member() });
    expect(result.a?.orders).toContain(5);
    expect(result.a?.orders).toHaveLength(3);
    expect(result.b?.orders).toHaveLength(3);
    everyPartitionOnce(result, 'orders', 6);
  });

  it('keeps what members hold when nothing changes', () => {
    const result = plan({
      a: member({ owned: { orders: [1, 3, 5], 'orders.retry.billing': [0, 2, 4] } }),
      b: member({ owned: { orders: [0, 2, 4], 'orders.retry.billing': [1, 3, 5] } }),
    });
    expect(result).toEqual({
      a: { orders: [1, 3, 5], 'orders.retry.billing': [0, 2, 4] },
      b: { orders: [0, 2, 4], 'orders.retry.billing': [1, 3, 5] },
    });
  });

  it('still gives a new member its share when every partition is busy', () => {
    const all = [0, 1, 2, 3, 4, 5];
    const result = plan({ a: member({ owned: { orders: all }, busy: { orders: all } }), b: member() });
    expect(result.a?.orders).toHaveLength(3);
    expect(result.b?.orders).toHaveLength(3);
    everyPartitionOnce(result, 'orders', 6);
  });

  it('gives the larger shares to the members with busy partitions', () => {
    const result = plan({
      a: member(),
      b: member({ owned: { orders: [0, 1, 2, 3] }, busy: { orders: [0, 1, 2, 3] } }),
      c: member({ owned: { orders: [4, 5] } }),
      d: member(),
    });
    // 6 partitions over 4 members: two get 2, two get 1; b keeps 2 of its busy ones, c keeps both of its own.
    expect(result.b?.orders).toEqual([0, 1]);
    expect(result.c?.orders).toEqual([4, 5]);
    expect([result.a?.orders?.length, result.d?.orders?.length]).toEqual([1, 1]);
    everyPartitionOnce(result, 'orders', 6);
  });

  it('gives a stalled member nothing while another member can work', () => {
    const all = [0, 1, 2, 3, 4, 5];
    const stalled = member({
      owned: { orders: all, 'orders.retry.billing': all },
      busy: { orders: [2] },
      stalled: true,
    });
    const result = plan({ a: stalled, b: member() });
    expect(result.a).toEqual({});
    expect(result.b).toEqual({ orders: all, 'orders.retry.billing': all });
  });

  it('still assigns a topic whose only readers are stalled', () => {
    const result = plan({ a: member({ stalled: true }), b: member({ stalled: true }) });
    everyPartitionOnce(result, 'orders', 6);
  });

  it('assigns a topic only to the members that subscribe to it', () => {
    const result = plan({ a: member({}, ['orders']), b: member() });
    expect(result.a?.['orders.retry.billing']).toBeUndefined();
    expect(result.b?.['orders.retry.billing']).toEqual([0, 1, 2, 3, 4, 5]);
    everyPartitionOnce(result, 'orders', 6);
  });

  it('resolves two members claiming one partition, and ignores partitions that do not exist', () => {
    const result = plan({ a: member({ owned: { orders: [0, 1, 9] } }), b: member({ owned: { orders: [0, 2] } }) });
    everyPartitionOnce(result, 'orders', 6);
    expect(result.a?.orders).toContain(1);
    expect(result.b?.orders).toContain(2);
  });

  it('treats members from other clients (no or foreign user data) as holding nothing', () => {
    const result = plan({ a: { topics: [...topics], metadata: Buffer.from('not json') }, b: { topics: [...topics] } });
    everyPartitionOnce(result, 'orders', 6);
    expect(decodeOwnership(Buffer.from('{"v":2}'))).toEqual({ owned: {}, busy: {} });
  });

  it('computes the same plan whoever leads', () => {
    const members = {
      b: member({ owned: { orders: [0] } }),
      a: member(),
      c: member({ owned: { orders: [5] }, busy: { orders: [5] } }),
    };
    const first = stickyAssigner('a', new Map(Object.entries(members)), topics, metadata);
    const second = stickyAssigner('c', new Map(Object.entries(members).reverse()), topics, metadata);
    expect(second).toEqual(first);
  });
});
