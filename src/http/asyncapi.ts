import type { TSchema } from 'typebox';
import type { AnyService } from '../service/service.ts';
import type { StreamDef } from '../service/stream.ts';

/** An AsyncAPI 3.0 document, as plain JSON. */
export type AsyncApiDocument = Record<string, unknown> & {
  asyncapi: '3.0.0';
  channels: Record<string, unknown>;
  operations: Record<string, unknown>;
};

/** The CloudEvents attributes every message carries, documented as message headers. */
const CLOUDEVENTS_HEADERS = {
  type: 'object',
  description:
    'CloudEvents 1.0 attributes in binary mode (ce- headers on transports with headers); see docs/protocol.md',
  properties: {
    'ce-specversion': { type: 'string', const: '1.0' },
    'ce-id': { type: 'string', description: 'unique message id; inboxes deduplicate on it' },
    'ce-source': { type: 'string', description: 'producer as <service>@<version>' },
    'ce-type': { type: 'string', description: 'the stream name' },
    'ce-time': { type: 'string', format: 'date-time' },
    'ce-subject': { type: 'string', description: 'partition key' },
    'ce-traceparent': { type: 'string', description: 'W3C trace context' },
    'ce-tracestate': { type: 'string' },
    'ce-requestid': { type: 'string', description: 'request id of the work that emitted the message' },
  },
  required: ['ce-specversion', 'ce-id', 'ce-source', 'ce-type', 'ce-time'],
};

/** `orders.placed` → `OrdersPlaced`. */
function pascal(name: string): string {
  return name
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((word) => (word[0]?.toUpperCase() ?? '') + word.slice(1))
    .join('');
}

function jsonSchema(schema: TSchema): unknown {
  return JSON.parse(
    JSON.stringify(schema, (key, value: unknown) => (key === '$id' || key.startsWith('x-gantry-') ? undefined : value)),
  );
}

/**
 * Builds the AsyncAPI 3.0 document of the streams the services emit (`send`) and consume (`receive`), from the same
 * schemas the bus validates with. Dead-letter streams are documented beside the streams that are consumed.
 */
export function buildAsyncApi(
  services: readonly AnyService[],
  info: { title: string; version: string },
): AsyncApiDocument {
  const streams = new Map<string, StreamDef>();
  const operations: Record<string, unknown> = {};
  for (const svc of services) {
    for (const stream of svc.emitted.values()) {
      streams.set(stream.name, stream);
      operations[`${svc.info.name}.send${pascal(stream.name)}`] = {
        action: 'send',
        channel: { $ref: `#/channels/${stream.name}` },
        summary: `${svc.info.name} emits ${stream.name}`,
        messages: [{ $ref: `#/channels/${stream.name}/messages/${pascal(stream.name)}` }],
      };
    }
    for (const event of svc.events) {
      if (event.kind !== 'consumer') continue;
      streams.set(event.stream.name, event.stream);
      operations[`${svc.info.name}.receive${pascal(event.stream.name)}.${event.group}`] = {
        action: 'receive',
        channel: { $ref: `#/channels/${event.stream.name}` },
        summary: `${svc.info.name} consumes ${event.stream.name} in group ${event.group} (at most ${event.options.maxAttempts ?? 5} attempts, then ${event.stream.name}.dlq)`,
        messages: [{ $ref: `#/channels/${event.stream.name}/messages/${pascal(event.stream.name)}` }],
      };
    }
  }
  const channels: Record<string, unknown> = {};
  const messages: Record<string, unknown> = {};
  for (const stream of [...streams.values()].sort((a, b) => a.name.localeCompare(b.name))) {
    const message = pascal(stream.name);
    messages[message] = {
      name: message,
      title: stream.name,
      contentType: 'application/json',
      headers: CLOUDEVENTS_HEADERS,
      payload: jsonSchema(stream.schema),
      ...(stream.description ? { summary: stream.description } : {}),
    };
    channels[stream.name] = {
      address: stream.name,
      ...(stream.description ? { description: stream.description } : {}),
      messages: { [message]: { $ref: `#/components/messages/${message}` } },
    };
  }
  messages.DeadLetter = {
    name: 'DeadLetter',
    contentType: 'application/json',
    headers: CLOUDEVENTS_HEADERS,
    payload: {
      type: 'object',
      properties: {
        stream: { type: 'string' },
        group: { type: 'string' },
        reason: { type: 'string' },
        attempts: { type: 'integer' },
        error: {
          type: 'object',
          properties: { code: { type: 'string' }, message: { type: 'string' }, retryable: { type: 'boolean' } },
        },
        original: { description: 'the original envelope, or null when it could not be decoded' },
        raw: { type: 'string' },
      },
      required: ['stream', 'group', 'reason', 'attempts', 'error', 'original'],
    },
  };
  for (const stream of streams.values()) {
    channels[`${stream.name}.dlq`] = {
      address: `${stream.name}.dlq`,
      description: `dead letters of ${stream.name}`,
      messages: { DeadLetter: { $ref: '#/components/messages/DeadLetter' } },
    };
  }
  return {
    asyncapi: '3.0.0',
    info,
    defaultContentType: 'application/json',
    channels,
    operations,
    components: { messages },
  };
}
