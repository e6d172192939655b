export { type Mail, type MailboxEntry, type Mailer, smtp } from './driver.ts';
