import { defineStream, type Static, t } from 'gantry';
import { Customer } from './model.ts';

/** One change of one customer, with the record before and after: enough to replicate or audit it. */
export const CustomerChange = t.Object({
  operation: t.Union([t.Literal('created'), t.Literal('updated'), t.Literal('deleted')]),
  customerId: t.String({ format: 'uuid' }),
  /** The customer's version after the change; grows by one per change, so replicas can order changes. */
  version: t.Integer({ minimum: 1 }),
  before: t.Union([Customer, t.Null()]),
  after: t.Union([Customer, t.Null()]),
  changedBy: t.String(),
  changedAt: t.String({ format: 'date-time' }),
});
export type CustomerChange = Static<typeof CustomerChange>;

/** Every create, update and delete of a customer, keyed by customer id so one customer's changes stay in order. */
export const customerChanged = defineStream('customers.changed', CustomerChange, {
  description: 'every change of a customer, with the record before and after',
  key: (change) => change.customerId,
});

/** What the notifier sends, and why. */
export const NotificationRequest = t.Object({
  notificationId: t.String({ format: 'uuid' }),
  kind: t.Union([t.Literal('welcome'), t.Literal('email-changed'), t.Literal('goodbye')]),
  customerId: t.String({ format: 'uuid' }),
  name: t.String(),
  to: t.Array(t.String({ format: 'email' }), { minItems: 1 }),
  cc: t.Optional(t.Array(t.String({ format: 'email' }))),
  bcc: t.Optional(t.Array(t.String({ format: 'email' }))),
  /** For `email-changed`: the address before the change. */
  previousEmail: t.Optional(t.String({ format: 'email' })),
});
export type NotificationRequest = Static<typeof NotificationRequest>;

/** Requests for emails to customers. */
export const notificationRequested = defineStream('notifications.requested', NotificationRequest, {
  description: 'an email to send to a customer',
  key: (request) => request.customerId,
});
