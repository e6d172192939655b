// One trace across processes: customers and the replicator run as `gantry start` processes on PostgreSQL (database
// and bus), each exporting spans over OTLP/HTTP to a receiver this test runs. The exporter of
// @opentelemetry/exporter-trace-otlp-http posts OTLP JSON, so the receiver parses JSON (gzip-aware).
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, type GantryProcess, startGantry, stopGently } from '../support/processes.ts';

const ADMIN = 'postgres://postgres@127.0.0.1:5432/postgres';
const SPAN_KIND = { server: 2, producer: 4, consumer: 5, client: 3 } as const;

/** A span as the receiver keeps it: ids as lower-case hex, and the `service.name` of the process that sent it. */
interface ReceivedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
}

interface OtlpValue {
  stringValue?: string;
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
}
interface OtlpRequest {
  resourceSpans?: {
    resource?: { attributes?: { key: string; value: OtlpValue }[] };
    scopeSpans?: { spans?: OtlpSpan[] }[];
  }[];
}

/** OTLP/JSON carries ids as hex; accept base64 too (the protobuf-JSON mapping), so either encoding is read right. */
function hexId(value: string | undefined): string {
  if (!value) return '';
  if (/^[0-9a-f]+$/i.test(value) && (value.length === 32 || value.length === 16)) return value.toLowerCase();
  return Buffer.from(value, 'base64').toString('hex');
}

/** A minimal OTLP/HTTP trace receiver: `POST /v1/traces` with a JSON body. */
async function startReceiver(): Promise<{ server: Server; url: string; spans: ReceivedSpan[]; requests: number }> {
  const state = { spans: [] as ReceivedSpan[], requests: 0 };
  const body = async (request: IncomingMessage): Promise<Buffer> => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks);
    return request.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
  };
  const server = createServer((request, response) => {
    if (request.method !== 'POST' || request.url !== '/v1/traces') {
      response.writeHead(404).end();
      return;
    }
    body(request).then(
      (raw) => {
        if (!String(request.headers['content-type']).includes('json')) {
          response.writeHead(415).end();
          return;
        }
        state.requests++;
        const parsed = JSON.parse(raw.toString('utf8')) as OtlpRequest;
        for (const resource of parsed.resourceSpans ?? []) {
          const service =
            resource.resource?.attributes?.find((attribute) => attribute.key === 'service.name')?.value.stringValue ??
            '';
          for (const scope of resource.scopeSpans ?? []) {
            for (const span of scope.spans ?? []) {
              state.spans.push({
                service,
                traceId: hexId(span.traceId),
                spanId: hexId(span.spanId),
                parentSpanId: hexId(span.parentSpanId),
                name: span.name,
                kind: span.kind,
              });
            }
          }
        }
        response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      },
      () => response.writeHead(400).end(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    server,
    url: `http://127.0.0.1:${port}`,
    get spans() {
      return state.spans;
    },
    get requests() {
      return state.requests;
    },
  };
}

async function waitUntil<T>(find: () => T | undefined, what: string, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = find();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

describe('one trace across the customers and replicator processes', () => {
  const id = randomUUID().slice(0, 8);
  const databaseName = `gantry_trace_${id}`;
  const databaseUrl = `postgres://postgres@127.0.0.1:5432/${databaseName}`;
  const admin = new pg.Client({ connectionString: ADMIN });
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  const processes: GantryProcess[] = [];
  let customersUrl = '';

  beforeAll(async () => {
    receiver = await startReceiver();
    await admin.connect();
    await admin.query(`create database ${databaseName}`);
    const customersPort = await freePort();
    customersUrl = `http://127.0.0.1:${customersPort}`;
    const env = {
      GANTRY_ENV: 'test',
      GANTRY_BUS: databaseUrl,
      DATABASE_URL: databaseUrl,
      REPLICATOR__DRIVERS__REPLICA__URL: databaseUrl,
      REPLICATOR__SOURCE_URL: customersUrl,
      GANTRY_DOCS: 'false',
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      // Export batches every 100 ms rather than every 5 s; stopping a process flushes what is left.
      OTEL_BSP_SCHEDULE_DELAY: '100',
    };
    const host = ['--host', 'test/support/traced-system.ts'];
    // The replicator first: its group exists before the first change is published.
    processes.push(
      await startGantry('replicator', [...host, 'replicator'], { ...env, PORT: String(await freePort()) }),
    );
    processes.push(await startGantry('customers', [...host, 'customers'], { ...env, PORT: String(customersPort) }));
  });

  afterAll(async () => {
    for (const proc of processes) await stopGently(proc);
    receiver?.server.close();
    await admin.query(`drop database if exists ${databaseName} with (force)`).catch(() => undefined);
    await admin.end();
  });

  it('exports HTTP → event → outbox publish → consume → replica write from both processes with one trace id', async () => {
    const traceId = randomUUID().replaceAll('-', '');
    const callerSpan = randomUUID().replaceAll('-', '').slice(0, 16);
    const response = await fetch(`${customersUrl}/customers`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: `00-${traceId}-${callerSpan}-01` },
      body: JSON.stringify({ name: 'Katherine Johnson', email: `katherine-${id}@example.com` }),
    });
    expect(response.status).toBe(201);

    const inTrace = (): ReceivedSpan[] => receiver.spans.filter((span) => span.traceId === traceId);
    const write = await waitUntil(
      () => inTrace().find((span) => span.service === 'replicator' && span.name === 'replica upsert'),
      `the replica write span (received: ${receiver.requests} exports)`,
    );
    const spans = inTrace();
    const one = (service: string, test: (span: ReceivedSpan) => boolean, what: string): ReceivedSpan => {
      const found = spans.filter((span) => span.service === service && test(span));
      expect(found, `${what} in ${JSON.stringify(spans, null, 1)}`).toHaveLength(1);
      return found[0] as ReceivedSpan;
    };
    // The POST event's run is the server span of its request: one span for both.
    const event = one('customers', (s) => s.kind === SPAN_KIND.server && s.name === 'POST /customers', 'HTTP span');
    const publish = one(
      'customers',
      (s) => s.kind === SPAN_KIND.producer && s.name === 'publish customers.changed',
      'publish span',
    );
    const consume = one(
      'replicator',
      (s) => s.kind === SPAN_KIND.consumer && s.name === 'replicator on customers.changed (replicator)',
      'consume span',
    );
    expect(event.parentSpanId).toBe(callerSpan);
    expect(publish.parentSpanId).toBe(event.spanId);
    // Across the broker: the replicator's consume span continues under the customers process's publish span.
    expect(consume.parentSpanId).toBe(publish.spanId);
    expect(write.parentSpanId).toBe(consume.spanId);
    expect(write.kind).toBe(SPAN_KIND.client);
    // The POST's own statements on PostgreSQL (node-postgres): its transaction, with the customer row and two outbox rows.
    const queries = spans.filter(
      (s) => s.service === 'customers' && s.parentSpanId === event.spanId && s.name.startsWith('db '),
    );
    expect(queries.map((s) => s.name)).toEqual(['db begin', 'db insert', 'db insert', 'db insert', 'db commit']);
    expect(queries.every((s) => s.kind === SPAN_KIND.client)).toBe(true);
  });
});
