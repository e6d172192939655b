import { randomUUID } from 'node:crypto';
import { startTestHost, type TestHost } from 'gantry/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEnvelope } from '../../src/bus/envelope.ts';
import { type CustomerChange, customerChanged } from '../customers/streams.ts';
import { ChangeBroadcaster } from './broadcaster.ts';
import { sseEvent, webApp } from './plugin.ts';
import { defaultWebGroup, webService } from './service.ts';

/** One parsed Server-Sent Event. */
interface SseMessage {
  event: string;
  id?: string;
  data: unknown;
}

/** A browser's view of `/app/events` over a real socket: the events so far, the raw text, and a way to leave. */
interface EventStream {
  status: number;
  headers: Headers;
  events: SseMessage[];
  text: () => string;
  /** Resolves once an event satisfies `predicate`; rejects after `timeoutMs`. */
  until: (predicate: (events: SseMessage[]) => boolean, what: string, timeoutMs?: number) => Promise<void>;
  /** Resolves when the server ends the stream. */
  ended: Promise<void>;
  close: () => void;
}

async function openEvents(baseUrl: string): Promise<EventStream> {
  const abort = new AbortController();
  const response = await fetch(`${baseUrl}/app/events`, { signal: abort.signal });
  const events: SseMessage[] = [];
  let raw = '';
  let buffer = '';
  const reader = (response.body as ReadableStream<Uint8Array>).pipeThrough(new TextDecoderStream()).getReader();
  const ended = (async () => {
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        raw += value;
        buffer += value;
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const fields = new Map(
            block
              .split('\n')
              .filter((line) => line !== '' && !line.startsWith(':'))
              .map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 2)] as const),
          );
          if (!fields.has('event')) continue;
          events.push({
            event: fields.get('event') as string,
            data: JSON.parse(fields.get('data') ?? 'null'),
            ...(fields.has('id') ? { id: fields.get('id') as string } : {}),
          });
        }
      }
    } catch (error) {
      if (!abort.signal.aborted) throw error;
    }
  })();
  const until = async (predicate: (events: SseMessage[]) => boolean, what: string, timeoutMs = 5_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(events)) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(events)}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };
  return {
    status: response.status,
    headers: response.headers,
    events,
    text: () => raw,
    until,
    ended,
    close: () => abort.abort(),
  };
}

const changes = (events: SseMessage[]): CustomerChange[] =>
  events.filter((e) => e.event === 'change').map((e) => e.data as CustomerChange);

function changeOf(
  customerId: string,
  operation: CustomerChange['operation'],
  version: number,
  name = 'Ada',
): CustomerChange {
  const customer = {
    id: customerId,
    name,
    email: 'ada@example.com',
    version,
    createdAt: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:00:00.000Z',
  };
  return {
    operation,
    customerId,
    version,
    before: operation === 'created' ? null : { ...customer, version: version - 1 },
    after: operation === 'deleted' ? null : customer,
    changedBy: 'api',
    changedAt: '2026-01-01T00:00:00.000Z',
  };
}

describe('the web app plugin and the web service', () => {
  const broadcaster = new ChangeBroadcaster();
  let app: TestHost;
  let baseUrl: string;
  beforeAll(async () => {
    app = await startTestHost({
      services: [webService({ broadcaster, group: 'web-unit-test' })],
      plugins: [webApp(broadcaster, { heartbeatMs: 50 })],
      // Short request deadlines, so the test below shows they do not cut a stream that outlives them.
      config: { host: { address: '127.0.0.1', timeouts: { requestMs: 300, headersMs: 200 } } },
    });
    baseUrl = await app.host.listen();
  });
  afterAll(async () => app?.stop());

  it('opens with a ready event, then sends one change event per change, with the message id', async () => {
    const stream = await openEvents(baseUrl);
    try {
      expect(stream.status).toBe(200);
      expect(stream.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
      expect(stream.headers.get('cache-control')).toBe('no-cache, no-transform');
      await stream.until((events) => events.length > 0, 'the ready event');
      expect(stream.events[0]).toEqual({ event: 'ready', data: { live: true } });
      expect(stream.text().startsWith('retry: 2000\n\n')).toBe(true);

      // As the customers service would publish them: through the bus, to the web service's own group.
      const id = randomUUID();
      const sent = [changeOf(id, 'created', 1), changeOf(id, 'updated', 2, 'Ada Lovelace'), changeOf(id, 'deleted', 3)];
      const envelopes = sent.map((data) =>
        createEnvelope({ stream: customerChanged.name, data, source: 'customers@1.1.0', key: id }),
      );
      for (const envelope of envelopes) await app.host.messageBus.publish(customerChanged.name, envelope);
      await stream.until((events) => changes(events).filter((c) => c.customerId === id).length === 3, 'three changes');

      const mine = stream.events.filter((e) => e.event === 'change' && (e.data as CustomerChange).customerId === id);
      expect(mine.map((e) => e.data)).toEqual(sent);
      expect(mine.map((e) => e.id)).toEqual(envelopes.map((e) => e.id));
    } finally {
      stream.close();
    }
  });

  it('sends heartbeats on an idle stream and outlives the request deadline', async () => {
    const stream = await openEvents(baseUrl);
    try {
      await new Promise((resolve) => setTimeout(resolve, 700));
      expect(stream.text().match(/^: heartbeat$/gm)?.length ?? 0).toBeGreaterThanOrEqual(3);
      const id = randomUUID();
      await app.publish(customerChanged, changeOf(id, 'created', 1), { key: id });
      await stream.until((events) => changes(events).some((c) => c.customerId === id), 'the change after 700 ms');
    } finally {
      stream.close();
    }
  });

  it('lets go of a browser that leaves', async () => {
    // The streams of the tests above were closed: wait until the host noticed.
    await app.waitFor(() => broadcaster.listenerCount === 0, 'no listener');
    const stream = await openEvents(baseUrl);
    await stream.until((events) => events.length > 0, 'the ready event');
    expect(broadcaster.listenerCount).toBe(1);
    stream.close();
    await app.waitFor(() => broadcaster.listenerCount === 0, 'the listener to go');
  });

  it('closes the stream of a browser that falls too far behind', async () => {
    // A plugin of its own, whose browsers may fall 64 KiB behind; changes are published straight to the broadcaster.
    const slow = new ChangeBroadcaster();
    const host = await startTestHost({
      services: [],
      plugins: [webApp(slow, { maxBufferedBytes: 65_536 })],
      config: { host: { address: '127.0.0.1' } },
    });
    try {
      const url = await host.host.listen();
      const response = await fetch(`${url}/app/events`); // headers only: the body is never read
      await host.waitFor(() => slow.listenerCount === 1, 'the browser to connect');
      const change = {
        operation: 'created',
        customerId: '00000000-0000-4000-8000-000000000000',
        version: 1,
        before: null,
        after: null,
        changedBy: 'x'.repeat(100_000),
        changedAt: new Date().toISOString(),
      } satisfies CustomerChange;
      // The socket and the client take some megabytes before the stream has to keep any.
      for (let i = 0; i < 400 && slow.listenerCount > 0; i++) {
        slow.publish({ id: String(i), change });
        await new Promise((resolve) => setImmediate(resolve));
      }
      expect(slow.listenerCount).toBe(0);
      expect(host.logs.lines.some((line) => line.msg === 'browser too slow; stream closed')).toBe(true);
      await response.body?.cancel().catch(() => undefined);
    } finally {
      await host.stop();
    }
  });

  it('serves the files of the app, read once, with revalidation', async () => {
    const page = await app.request('GET', '/app/');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.text).toContain('<script type="module" src="/app/app.js"></script>');
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    expect((await app.request('GET', '/app')).text).toBe(page.text);

    const script = await app.request('GET', '/app/app.js');
    expect(script.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(script.text).toContain("new EventSource('/app/events')");
    const etag = script.headers.etag as string;
    expect(etag).toMatch(/^"[\w-]{22}"$/);
    expect(script.headers['cache-control']).toBe('no-cache');
    const again = await app.request('GET', '/app/app.js', undefined, { 'if-none-match': etag });
    expect(again.status).toBe(304);
    expect(again.text).toBe('');

    expect((await app.request('GET', '/app/app.css')).headers['content-type']).toBe('text/css; charset=utf-8');
    const missing = await app.request('GET', '/app/secret.txt');
    expect(missing.status).toBe(404);
    expect(missing.headers['content-type']).toContain('application/problem+json');
    expect((await app.request('HEAD', '/app/events')).status).not.toBe(200);
  });
});

describe('the web app when the host stops', () => {
  it('ends every open stream, so the stop is clean and quick', async () => {
    const broadcaster = new ChangeBroadcaster();
    const app = await startTestHost({
      services: [webService({ broadcaster, group: 'web-stop-test' })],
      plugins: [webApp(broadcaster)],
      config: { host: { address: '127.0.0.1' } },
    });
    const url = await app.host.listen();
    const streams = [await openEvents(url), await openEvents(url)];
    await Promise.all(streams.map((s) => s.until((events) => events.length > 0, 'the ready event')));
    expect(broadcaster.listenerCount).toBe(2);
    const result = await app.host.stop();
    await Promise.all(streams.map((s) => s.ended));
    expect(result.clean).toBe(true);
    expect(result.durationMs).toBeLessThan(2_000);
    expect(broadcaster.listenerCount).toBe(0);
    expect(broadcaster.fed).toBe(false);
  });

  it('says so when the app is served without the web service', async () => {
    const app = await startTestHost({
      services: [],
      plugins: [webApp(new ChangeBroadcaster())],
      config: { host: { address: '127.0.0.1' } },
    });
    try {
      expect(app.logs.lines.some((line) => String(line.msg).includes('without the web service'))).toBe(true);
      const stream = await openEvents(await app.host.listen());
      await stream.until((events) => events.length > 0, 'the ready event');
      expect(stream.events[0]).toEqual({ event: 'ready', data: { live: false } });
      stream.close();
    } finally {
      await app.stop();
    }
  });
});

describe('the pieces', () => {
  it('formats one event per change, its JSON on one line', () => {
    expect(sseEvent('change', { text: 'two\nlines' }, 'm-1')).toBe(
      'id: m-1\nevent: change\ndata: {"text":"two\\nlines"}\n\n',
    );
    expect(sseEvent('ready', { live: false })).toBe('event: ready\ndata: {"live":false}\n\n');
  });

  it('names the default consumer group after the machine, in characters every broker accepts', () => {
    expect(defaultWebGroup('Web-1.example.com')).toBe('web-web-1-example-com');
    expect(defaultWebGroup('..')).toBe('web-local');
    expect(defaultWebGroup()).toMatch(/^web-[a-z0-9-]+$/);
  });

  it('drops a listener that throws and still gives the change to the others', () => {
    const broadcaster = new ChangeBroadcaster();
    const seen: string[] = [];
    broadcaster.subscribe(() => {
      throw new Error('a broken browser');
    });
    const stop = broadcaster.subscribe((event) => seen.push(event.id));
    const change = {} as CustomerChange;
    expect(broadcaster.publish({ id: 'a', change })).toBe(1);
    expect(broadcaster.listenerCount).toBe(1);
    stop();
    stop();
    expect(broadcaster.publish({ id: 'b', change })).toBe(0);
    expect(seen).toEqual(['a']);
  });
});
