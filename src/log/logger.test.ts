import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createLogger, type Logger, REDACTED_PATHS } from './logger.ts';

/** A destination that keeps each written line, parsed, without the fields that differ between two loggers. */
function capture(): { stream: Writable; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const text of chunk.toString().split('\n').filter(Boolean)) {
        const { time: _time, pid: _pid, hostname: _hostname, ...rest } = JSON.parse(text) as Record<string, unknown>;
        lines.push(rest);
      }
      done();
    },
  });
  return { stream, lines };
}

/** Writes the same lines through `log`: fields of every type, secrets at every kind of path, a child's bindings. */
// One error for both loggers, so the stacks they write are the same.
const failure = Object.assign(new Error('boom'), { token: 'tk-2', code: 'E1' });

function writeLines(log: Logger): void {
  log.info({ note: 'quote " newline \n accent é', count: 3, ratio: 0.25, ok: false, nothing: null }, 'primitives');
  log.info({ user: { name: 'Ada', password: 'pw-1' }, list: [1, 'two'], deep: { a: { password: 'kept' } } }, 'nested');
  log.info({ password: 'pw-2', token: 'tk-1', secret: 'sc-1' }, 'top level');
  log.info({ headers: { authorization: 'Bearer x', cookie: 'c=1', 'x-api-key': 'k-1', accept: 'json' } }, 'headers');
  log.info({ req: { headers: { authorization: 'Bearer y', 'x-gantry-service-token': 'st-1' } } }, 'req');
  log.error({ err: failure, status: 500 }, 'error');
  const child = log.child({ service: 'orders', attempt: 2, creds: { apiKey: 'ak-1', id: 'me' } });
  child.info({ durationMs: 1.5, auth: { authorization: 'Basic z' } }, 'child');
  child.child({ requestId: 'r-1' }).info('grandchild');
}

describe('createLogger', () => {
  it('writes the same lines as pino with the same redaction, secrets censored at every path', () => {
    const ours = capture();
    writeLines(createLogger({ env: 'test', level: 'info', destination: ours.stream }));
    const reference = capture();
    writeLines(
      pino(
        { level: 'info', base: { env: 'test' }, redact: { paths: REDACTED_PATHS, censor: '[secret]' } },
        reference.stream,
      ),
    );

    expect(ours.lines).toHaveLength(8);
    expect(ours.lines).toEqual(reference.lines);
    const text = JSON.stringify(ours.lines);
    for (const secret of ['pw-1', 'pw-2', 'tk-1', 'tk-2', 'sc-1', 'Bearer', 'c=1', 'k-1', 'st-1', 'ak-1', 'Basic z']) {
      expect(text).not.toContain(secret);
    }
    // Only paths that were asked for: a password two levels down and ordinary fields stay as they were.
    expect(ours.lines[1]).toMatchObject({
      user: { name: 'Ada', password: '[secret]' },
      deep: { a: { password: 'kept' } },
    });
    expect(ours.lines[0]).toMatchObject({ note: 'quote " newline \n accent é', count: 3, ratio: 0.25, ok: false });
    expect(ours.lines[7]).toMatchObject({
      service: 'orders',
      attempt: 2,
      creds: { apiKey: '[secret]' },
      requestId: 'r-1',
    });
  });

  it('redacts the extra paths it is given', () => {
    const { stream, lines } = capture();
    createLogger({ env: 'test', level: 'info', destination: stream, redact: ['card.number'] }).info(
      { card: { number: '4111', brand: 'visa' } },
      'paid',
    );
    expect(lines[0]).toMatchObject({ card: { number: '[secret]', brand: 'visa' } });
  });

  it('scrubs secret values wherever they appear in a line, in their JSON-escaped form too, and leaves other lines alone', () => {
    const { stream, lines } = capture();
    const log = createLogger({
      env: 'test',
      level: 'info',
      destination: stream,
      scrub: ['hunter2-long', 'quote"d-secret', 'other-secret'],
    });
    log.info({ reason: 'login failed for hunter2-long at db' }, 'failed');
    log.info({ settings: { key: 'quote"d-secret' }, again: 'hunter2-long hunter2-long' }, 'dump');
    log.info({ note: 'nothing secret here', count: 2 }, 'plain');
    expect(lines[0]).toMatchObject({ reason: 'login failed for [secret] at db' });
    expect(lines[1]).toMatchObject({ settings: { key: '[secret]' }, again: '[secret] [secret]' });
    expect(lines[2]).toMatchObject({ note: 'nothing secret here', count: 2, msg: 'plain' });
  });
});
