import { eq } from 'drizzle-orm';
import { service, t } from 'gantry';
import { database } from 'gantry/db';
import { smtp } from 'gantry/smtp';
import { notificationRequested } from '../customers/streams.ts';
import { sentNotifications } from './schema.ts';
import { renderEmail } from './templates.ts';

const MailboxItem = t.Object({
  notificationId: t.String(),
  to: t.Array(t.String()),
  cc: t.Array(t.String()),
  subject: t.String(),
  sentAt: t.String({ format: 'date-time' }),
});

/**
 * The notifier: renders and sends the emails customers ask for, once each. Its inbox and its log of sent mails live
 * in its own database, in the same transaction; without `SMTP_URL` mail goes to a local mailbox (`GET /mailbox`).
 */
export const notifier = service({
  name: 'notifier',
  version: '1.0.0',
  description: 'Sends the emails of notification requests, once each.',
  settings: t.Object({ from: t.String({ default: 'Gantry Example <no-reply@example.com>' }) }),
  drivers: {
    db: database({ schema: { sentNotifications }, migrations: new URL('./migrations', import.meta.url) }),
    mail: smtp(),
  },
  groups: ['workers'],
})
  .on(
    notificationRequested,
    { group: 'notifier', inbox: 'db', maxAttempts: 8, backoffMs: 500 },
    async (request, ctx) => {
      // The inbox drops a redelivered message; this drops the same notification sent again in another message.
      const [already] = await ctx.tx
        .select({ id: sentNotifications.notificationId })
        .from(sentNotifications)
        .where(eq(sentNotifications.notificationId, request.notificationId))
        .for('update');
      if (already) {
        ctx.log.info({ notificationId: request.notificationId }, 'notification already sent');
        return;
      }
      const email = renderEmail(request);
      await ctx.drivers.mail.send({
        id: request.notificationId,
        from: ctx.settings.from,
        to: request.to,
        ...(request.cc ? { cc: request.cc } : {}),
        ...(request.bcc ? { bcc: request.bcc } : {}),
        ...email,
      });
      // Recorded in the inbox's transaction: a crash after the send and before this commit is the one window in which
      // a redelivery sends again (SMTP has no transaction to join).
      await ctx.tx.insert(sentNotifications).values({
        notificationId: request.notificationId,
        kind: request.kind,
        customerId: request.customerId,
        recipients: [...request.to, ...(request.cc ?? [])].join(', '),
        subject: email.subject,
      });
      ctx.log.info({ notificationId: request.notificationId, kind: request.kind }, 'email sent');
    },
  )
  .get(
    '/mailbox',
    {
      query: t.Object({ limit: t.Optional(t.Integer({ minimum: 1, maximum: 500, default: 100 })) }),
      response: t.Array(MailboxItem),
      summary: 'The local mailbox (embedded mode)',
    },
    async ({ query }, ctx) =>
      (await ctx.drivers.mail.mailbox(query.limit ?? 100)).map((mail) => ({
        notificationId: mail.id,
        to: mail.to,
        cc: mail.cc,
        subject: mail.subject,
        sentAt: mail.sentAt,
      })),
  );
