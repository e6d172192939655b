import { describe, expectTypeOf, it } from 'vitest';
import { type Context, service, t } from '../index.ts';
import type { AuthIdentity } from './identity.ts';
import type { EventAuth } from './rules.ts';

describe('auth types', () => {
  it('gives handlers ctx.auth, possibly undefined (public events and anonymous calls)', () => {
    service({ name: 'typed', version: '1.0.0' }).get(
      '/x',
      { auth: 'bearer', response: t.Object({ who: t.String() }) },
      async (_input, ctx) => {
        expectTypeOf(ctx.auth).toEqualTypeOf<AuthIdentity | undefined>();
        expectTypeOf<Context['auth']>().toEqualTypeOf<AuthIdentity | undefined>();
        return { who: ctx.auth?.subject ?? '' };
      },
    );
  });

  it('accepts every declared form and types the rule from the identity and the input', () => {
    expectTypeOf<'public'>().toExtend<EventAuth>();
    expectTypeOf<['public', 'bearer']>().toExtend<EventAuth>();
    expectTypeOf<{ methods: 'apiKey'; roles: ['ops'] }>().toExtend<EventAuth>();
    expectTypeOf<'oauth'>().not.toExtend<EventAuth>();
    service({ name: 'typed', version: '1.0.0' }).get(
      '/y/:id',
      {
        auth: {
          scopes: ['read'],
          allow: (who, input) => {
            expectTypeOf(who).toEqualTypeOf<AuthIdentity>();
            return who.subject === input.params.id;
          },
        },
        params: t.Object({ id: t.String() }),
      },
      async () => undefined,
    );
  });
});
