import { randomUUID } from 'node:crypto';
import { startTestHost, type TestHost } from 'gantry/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEnvelope } from '../../src/bus/envelope.ts';
import { type SmtpSink, startSmtpSink } from '../../test/support/smtp-sink.ts';
import { type NotificationRequest, notificationRequested } from '../customers/streams.ts';
import { notifier } from './service.ts';

const request = (kind: NotificationRequest['kind']): NotificationRequest => ({
  notificationId: randomUUID(),
  kind,
  customerId: randomUUID(),
  name: 'Ada <script>',
  to: ['ada@example.com'],
  cc: ['audit@example.com'],
  ...(kind === 'email-changed' ? { previousEmail: 'old@example.com' } : {}),
});

describe('the notifier, sending to a real SMTP server process', () => {
  let sink: SmtpSink;
  let app: TestHost;
  beforeAll(async () => {
    sink = await startSmtpSink();
    app = await startTestHost({
      services: [notifier],
      config: { services: { notifier: { drivers: { mail: { url: sink.url } } } } },
    });
  });
  afterAll(async () => {
    await app?.stop();
    await sink?.stop();
  });

  it('renders and sends each kind of notification', async () => {
    for (const kind of ['welcome', 'email-changed', 'goodbye'] as const)
      await app.publish(notificationRequested, request(kind));
    await app.waitFor(() => sink.mails.length === 3, 'three mails');
    expect(sink.mails.map((m) => m.subject).sort()).toEqual([
      'Goodbye, Ada <script>',
      'Welcome, Ada <script>',
      'Your email address was changed',
    ]);
    expect(sink.mails[0]?.recipients).toEqual(['ada@example.com', 'audit@example.com']);
  });

  it('sends a notification once, however often and in however many messages it arrives', async () => {
    const welcome = request('welcome');
    const message = createEnvelope({ stream: 'notifications.requested', data: welcome, source: 'customers@1.1.0' });
    const bus = app.host.messageBus;
    await bus.publish('notifications.requested', message);
    await bus.publish('notifications.requested', message);
    await app.publish(notificationRequested, welcome);
    await app.waitFor(() => sink.mails.some((m) => m.messageId.includes(welcome.notificationId)), 'the mail');
    await app.waitFor(
      () => app.host.counters.of('notifications.requested', 'notifier').acked >= 6,
      'every delivery to be settled',
    );
    expect(sink.mails.filter((m) => m.messageId.includes(welcome.notificationId))).toHaveLength(1);
  });

  it('retries while the SMTP server is away, then delivers', async () => {
    await sink.stop();
    const pending = request('goodbye');
    await app.publish(notificationRequested, pending);
    await app.waitFor(() => app.host.counters.of('notifications.requested', 'notifier').retried >= 1, 'a retry');
    const port = Number(new URL(sink.url).port);
    sink = await startSmtpSink(port);
    await app.waitFor(
      () => sink.mails.some((m) => m.messageId.includes(pending.notificationId)),
      'the mail after the server came back',
      20_000,
    );
  });
});

describe('the notifier without SMTP_URL', () => {
  it('delivers into the local mailbox that GET /mailbox lists', async () => {
    const app = await startTestHost({ services: [notifier] });
    try {
      const welcome = request('welcome');
      await app.publish(notificationRequested, welcome);
      await app.waitFor(
        async () => ((await app.request('GET', '/mailbox')).body as unknown[]).length === 1,
        'the mailbox entry',
      );
      const [mail] = (await app.request('GET', '/mailbox')).body as {
        notificationId: string;
        to: string[];
        subject: string;
        sentAt: string;
      }[];
      expect(mail).toMatchObject({
        notificationId: welcome.notificationId,
        to: ['ada@example.com'],
        subject: 'Welcome, Ada <script>',
      });
    } finally {
      await app.stop();
    }
  });
});
