import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { errorCodes } from './codes.ts';
import { GantryError } from './gantry-error.ts';

describe('the error catalogue', () => {
  const documented = new Map<string, { status: number }>();
  for (const match of readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8').matchAll(
    /^\| `(GANTRY_ERR_[A-Z_]+)` \| (\d{3}) \|/gm,
  )) {
    documented.set(match[1] as string, { status: Number(match[2]) });
  }

  it('documents every code, with its status, and documents no code that does not exist', () => {
    expect([...documented.keys()].sort()).toEqual(Object.keys(errorCodes).sort());
    for (const [code, entry] of Object.entries(errorCodes))
      expect(documented.get(code)?.status, code).toBe(entry.status);
  });

  it('rebuilds errors from their wire form, keeping unknown codes as internal errors', () => {
    const wire = new GantryError('GANTRY_ERR_HTTP_CONFLICT', 'taken', { details: { field: 'email' } }).toWire(
      'customers',
    );
    expect(wire).toEqual({
      code: 'GANTRY_ERR_HTTP_CONFLICT',
      message: 'taken',
      retryable: false,
      details: { field: 'email' },
      origin: 'customers',
    });
    const rebuilt = GantryError.fromWire(wire);
    expect(rebuilt.status).toBe(409);
    const foreign = GantryError.fromWire({ code: 'SOMETHING_ELSE', message: 'x', retryable: true });
    expect(foreign.code).toBe('GANTRY_ERR_INTERNAL');
    expect(foreign.retryable).toBe(true);
  });
});
