import { describe, expect, it } from 'vitest';
import type { AuthIdentity } from './identity.ts';
import { checkGrants, checkPredicate, resolvePlan } from './rules.ts';

const ada: AuthIdentity = { subject: 'ada', method: 'bearer', scopes: ['a', 'b'], roles: ['clerk'], claims: {} };
const input = { params: { id: 'ada' }, query: {}, headers: {}, body: undefined };

describe('auth plans', () => {
  it('applies the host default only where an event names no method', () => {
    expect(resolvePlan(undefined, ['apiKey'])).toMatchObject({ methods: ['apiKey'], anonymous: false });
    expect(resolvePlan({ scopes: ['x'] }, ['bearer'])).toMatchObject({ methods: ['bearer'], scopes: ['x'] });
    expect(resolvePlan('basic', ['apiKey'])).toMatchObject({ methods: ['basic'] });
    expect(resolvePlan(['public', 'bearer'], [])).toMatchObject({ methods: ['bearer'], anonymous: true });
    expect(resolvePlan('public', ['bearer'])).toMatchObject({ methods: [], anonymous: true });
    expect(resolvePlan(undefined, [])).toBeNull();
  });

  it('requires every scope and any one of the roles', () => {
    const plan = resolvePlan({ methods: 'bearer', scopes: ['a'], roles: ['admin', 'clerk'] }, []);
    expect(() => checkGrants(plan as never, ada)).not.toThrow();
    const more = resolvePlan({ methods: 'bearer', scopes: ['a', 'c'] }, []);
    expect(() => checkGrants(more as never, ada)).toThrow('missing scope(s): c');
    const admin = resolvePlan({ methods: 'bearer', roles: ['admin'] }, []);
    expect(() => checkGrants(admin as never, ada)).toThrow(/roles: admin/);
  });

  it('refuses when the rule says no, throws, or there is no caller', async () => {
    const plan = resolvePlan({ methods: 'bearer', allow: (who, i) => who.subject === i.params.id }, []) as never;
    await expect(checkPredicate(plan, ada, input)).resolves.toBeUndefined();
    await expect(checkPredicate(plan, { ...ada, subject: 'bob' }, input)).rejects.toMatchObject({ status: 403 });
    await expect(checkPredicate(plan, undefined, input)).rejects.toMatchObject({ status: 403 });
    const broken = resolvePlan(
      {
        methods: 'bearer',
        allow: () => {
          throw new Error('x');
        },
      },
      [],
    ) as never;
    await expect(checkPredicate(broken, ada, input)).rejects.toMatchObject({ code: 'GANTRY_ERR_AUTH_FORBIDDEN' });
  });
});
