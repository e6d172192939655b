import { appendFile, mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { loadClient } from '../../db/load-client.ts';
import { GantryError } from '../../errors/gantry-error.ts';
import type { Driver, DriverHandle, DriverOpenContext } from '../driver.ts';

/** One email to send. */
export interface Mail {
  /** Becomes the Message-ID header (`<id@host>`), so receivers can tell a resent copy from a new mail. */
  id: string;
  from: string;
  to: string[];
  cc?: string[];
  bcc?: string[];
  subject: string;
  text: string;
  html: string;
}

/** A mail as the local mailbox keeps it. */
export interface MailboxEntry {
  id: string;
  to: string[];
  cc: string[];
  bcc: string[];
  subject: string;
  text: string;
  html: string;
  sentAt: string;
}

/** What `ctx.drivers.<alias>` is for an SMTP driver. */
export interface Mailer {
  /** `smtp` when mail leaves through a server, `mailbox` when it stays in the local mailbox (embedded default). */
  readonly mode: 'smtp' | 'mailbox';
  /** Sends a mail; resolves when the server accepted it for every recipient (or the mailbox stored it). */
  send(mail: Mail): Promise<void>;
  /** The mails of the local mailbox, newest first (empty in `smtp` mode). */
  mailbox(limit?: number): Promise<MailboxEntry[]>;
}

/**
 * An SMTP driver: nodemailer to the server at the driver's `url` or `SMTP_URL` (`smtp://user:pass@host:port`,
 * `smtps://…`), or, with neither, a local mailbox (a JSON-lines file under the service's data folder, or memory in
 * tests) that the example web app shows. The mailbox takes each mail id once, even across restarts.
 */
export function smtp(): Driver<Mailer> {
  return {
    kind: 'smtp',
    async open(context: DriverOpenContext): Promise<DriverHandle<Mailer>> {
      const url =
        typeof context.config.url === 'string' && context.config.url !== '' ? context.config.url : process.env.SMTP_URL;
      if (url) return openSmtp(url, context);
      return openMailbox(context);
    },
  };
}

async function openSmtp(url: string, context: DriverOpenContext): Promise<DriverHandle<Mailer>> {
  if (!/^smtps?:\/\//.test(url)) {
    throw new GantryError(
      'GANTRY_ERR_DRIVER_UNKNOWN_SCHEME',
      `SMTP URL of '${context.service}.${context.alias}' must start with smtp:// or smtps://`,
    );
  }
  const nodemailer = await loadClient(() => import('nodemailer'), 'nodemailer');
  const transport = nodemailer.createTransport(url, { pool: true, maxConnections: 5 } as object);
  const host = new URL(url).hostname;
  return {
    client: {
      mode: 'smtp',
      async send(mail) {
        const info = await transport.sendMail({
          messageId: `<${mail.id}@${host}>`,
          from: mail.from,
          to: mail.to,
          ...(mail.cc?.length ? { cc: mail.cc } : {}),
          ...(mail.bcc?.length ? { bcc: mail.bcc } : {}),
          subject: mail.subject,
          text: mail.text,
          html: mail.html,
        });
        if (info.rejected.length > 0) {
          throw new GantryError('GANTRY_ERR_INTERNAL', `the SMTP server rejected ${info.rejected.join(', ')}`, {
            retryable: true,
          });
        }
      },
      async mailbox() {
        return [];
      },
    },
    embedded: false,
    check: async () => {
      await transport.verify();
    },
    close: async () => transport.close(),
  };
}

async function openMailbox(context: DriverOpenContext): Promise<DriverHandle<Mailer>> {
  const file = context.dataDir === null ? null : path.join(context.dataDir, 'mailbox.jsonl');
  const memory: MailboxEntry[] = [];
  if (file) await mkdir(path.dirname(file), { recursive: true });
  // The mailbox is the final delivery, so it can do what an SMTP server cannot: take each mail id once. A mail sent
  // again after a crash (delivered, but its sender died before recording it) is dropped here.
  const delivered = new Set<string>();
  if (file) {
    const text = await readFile(file, 'utf8').catch(() => '');
    for (const line of text.split('\n')) if (line) delivered.add((JSON.parse(line) as MailboxEntry).id);
  }
  return {
    client: {
      mode: 'mailbox',
      async send(mail) {
        if (delivered.has(mail.id)) return;
        delivered.add(mail.id);
        const entry: MailboxEntry = {
          id: mail.id,
          to: mail.to,
          cc: mail.cc ?? [],
          bcc: mail.bcc ?? [],
          subject: mail.subject,
          text: mail.text,
          html: mail.html,
          sentAt: new Date().toISOString(),
        };
        if (file) await appendFile(file, `${JSON.stringify(entry)}\n`);
        else memory.push(entry);
      },
      async mailbox(limit = 100) {
        if (!file) return memory.slice(-limit).reverse();
        const text = await readFile(file, 'utf8').catch(() => '');
        return text
          .split('\n')
          .filter(Boolean)
          .slice(-limit)
          .map((line) => JSON.parse(line) as MailboxEntry)
          .reverse();
      },
    },
    embedded: true,
    check: async () => undefined,
    close: async () => undefined,
  };
}
