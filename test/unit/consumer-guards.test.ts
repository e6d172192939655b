import { type DeadLetter, type DeadLetterInfo, defineStream, service, t } from 'gantry';
import { startTestHost, type TestHost } from 'gantry/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEnvelope } from '../../src/bus/envelope.ts';

const notes = defineStream('guard.notes', t.Object({ text: t.String() }));
const handled: string[] = [];
const reader = service({ name: 'reader', version: '1.0.0' }).on(
  notes,
  { group: 'reader', maxAttempts: 1 },
  async (data) => {
    handled.push(data.text);
  },
);

describe('consumers never trust the envelope', () => {
  let app: TestHost;
  const deadLetters: DeadLetterInfo[] = [];
  const dlq: DeadLetter[] = [];

  beforeAll(async () => {
    app = await startTestHost({
      services: [reader],
      config: { host: { maxMessageBytes: 256 } },
      plugins: [
        { name: 'dead-letters', register: (api) => api.hook('onDeadLetter', (info) => deadLetters.push(info)) },
      ],
    });
    await app.host.messageBus.subscribe(
      'guard.notes.dlq',
      'test-dlq',
      async (delivery) => {
        dlq.push(delivery.envelope?.data as DeadLetter);
        await delivery.ack();
      },
      { concurrency: 1, consumerName: 'test' },
    );
  });
  afterAll(async () => app.stop());

  it('handles a message of the right type and size', async () => {
    await app.publish(notes, { text: 'fine' });
    await app.waitFor(() => handled.includes('fine'), 'the handled message');
  });

  it('dead-letters a message larger than maxMessageBytes without handling it', async () => {
    const text = `big-${'x'.repeat(300)}`;
    await app.publish(notes, { text });
    await app.waitFor(
      () => dlq.some((letter) => letter.error.code === 'GANTRY_ERR_STREAM_MESSAGE_TOO_LARGE'),
      'a dead letter',
    );
    const letter = dlq.find((l) => l.error.code === 'GANTRY_ERR_STREAM_MESSAGE_TOO_LARGE');
    expect(letter?.reason).toMatch(/^message of 3\d\d bytes is larger than the 256 allowed$/);
    expect(letter?.error).toMatchObject({ retryable: false, details: { maxBytes: 256 } });
    expect(handled).not.toContain(text);
    expect(deadLetters.some((info) => info.reason === letter?.reason)).toBe(true);
  });

  it('dead-letters an envelope whose type is not the subscribed stream', async () => {
    const stray = createEnvelope({ stream: 'guard.other', data: { text: 'stray' }, source: 'intruder@1.0.0' });
    await app.host.messageBus.publish('guard.notes', stray);
    await app.waitFor(
      () => dlq.some((letter) => letter.error.code === 'GANTRY_ERR_STREAM_WRONG_TYPE'),
      'a dead letter',
    );
    const letter = dlq.find((l) => l.error.code === 'GANTRY_ERR_STREAM_WRONG_TYPE');
    expect(letter?.reason).toBe("message of type 'guard.other' arrived on stream 'guard.notes'");
    expect(letter?.original?.id).toBe(stray.id);
    expect(handled).not.toContain('stray');
  });
});
