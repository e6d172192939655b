import { type Static, t } from 'gantry';

/** A customer as the API shows it. */
export const Customer = t.Object({
  id: t.String({ format: 'uuid' }),
  name: t.String({ minLength: 1, maxLength: 200 }),
  email: t.String({ format: 'email', maxLength: 320 }),
  version: t.Integer({ minimum: 1 }),
  createdAt: t.String({ format: 'date-time' }),
  updatedAt: t.String({ format: 'date-time' }),
});
export type Customer = Static<typeof Customer>;

/** What a client sends to create a customer, or to replace one with PUT. */
export const NewCustomer = t.Object({
  name: t.String({ minLength: 1, maxLength: 200, description: '1 to 200 characters' }),
  email: t.String({ format: 'email', maxLength: 320, description: 'unique, compared without case' }),
});
export type NewCustomer = Static<typeof NewCustomer>;

/** A partial update: any of the fields, at least one. */
export const CustomerPatch = t.Object(
  {
    name: t.Optional(t.String({ minLength: 1, maxLength: 200 })),
    email: t.Optional(t.String({ format: 'email', maxLength: 320 })),
  },
  { minProperties: 1 },
);
export type CustomerPatch = Static<typeof CustomerPatch>;

/** The id in the path. */
export const CustomerId = t.Object({ id: t.String({ format: 'uuid' }) });

/** Paging and filters of the list. */
export const CustomerQuery = t.Object({
  page: t.Optional(t.Integer({ minimum: 1, default: 1 })),
  pageSize: t.Optional(t.Integer({ minimum: 1, maximum: 100, description: 'defaults to the pageSize setting' })),
  name: t.Optional(t.String({ minLength: 1, maxLength: 200, description: 'part of the name, any case' })),
  email: t.Optional(t.String({ minLength: 1, maxLength: 320, description: 'part of the email, any case' })),
});
export type CustomerQuery = Static<typeof CustomerQuery>;

/** One page of customers. */
export const CustomerPage = t.Object({
  items: t.Array(Customer),
  total: t.Integer({ minimum: 0 }),
  page: t.Integer({ minimum: 1 }),
  pageSize: t.Integer({ minimum: 1 }),
});
export type CustomerPage = Static<typeof CustomerPage>;

/** The settings of the customers service. */
export const CustomersSettings = t.Object({
  pageSize: t.Integer({ minimum: 1, maximum: 100, default: 20, description: 'page size when the client asks none' }),
});

/** A customer as replicas see it: deleted ones included, with when they were deleted. */
export const CustomerRecord = t.Object({
  ...Customer.properties,
  deletedAt: t.Union([t.String({ format: 'date-time' }), t.Null()]),
});
export type CustomerRecord = Static<typeof CustomerRecord>;

/** A page of the full snapshot, in id order. */
export const CustomerSnapshot = t.Object({
  items: t.Array(CustomerRecord),
  next: t.Union([t.String({ format: 'uuid' }), t.Null()]),
});

/** Paging of the snapshot: the last id seen and how many to return. */
export const SnapshotQuery = t.Object({
  after: t.Optional(t.String({ format: 'uuid' })),
  limit: t.Optional(t.Integer({ minimum: 1, maximum: 1000, default: 500 })),
});
