import type { NotificationRequest } from '../customers/streams.ts';

/** A rendered email. */
export interface RenderedEmail {
  subject: string;
  text: string;
  html: string;
}

/** Renders the email of a notification request, as plain text and as HTML (escaped). */
export function renderEmail(request: NotificationRequest): RenderedEmail {
  const name = request.name;
  switch (request.kind) {
    case 'welcome':
      return page(`Welcome, ${name}`, [`Hello ${name},`, 'Your customer account is ready. We are glad to have you.']);
    case 'email-changed':
      return page('Your email address was changed', [
        `Hello ${name},`,
        `The email address of your account changed from ${request.previousEmail ?? 'your previous address'} to ${request.to.join(', ')}.`,
        'If you did not make this change, reply to this message.',
      ]);
    case 'goodbye':
      return page(`Goodbye, ${name}`, [
        `Hello ${name},`,
        'Your customer account was closed. Thank you for having been with us.',
      ]);
  }
}

function page(subject: string, paragraphs: string[]): RenderedEmail {
  return {
    subject,
    text: `${paragraphs.join('\n\n')}\n`,
    html: `<!doctype html><html><body>${paragraphs.map((p) => `<p>${escapeHtml(p)}</p>`).join('')}</body></html>`,
  };
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
