import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { PassThrough } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { type HostPlugin, requireRole } from 'gantry';
import type { OidcLogin } from 'gantry/auth';
import type { BroadcastChange, ChangeBroadcaster } from './broadcaster.ts';

/** Options of {@link webApp}. */
export interface WebAppOptions {
  /** Milliseconds between heartbeats on an idle event stream; default 15 000 (below proxies' usual idle timeouts). */
  heartbeatMs?: number;
  /**
   * The role a caller needs for the event stream where admin endpoints are protected (prod, or
   * `GANTRY_ADMIN_PROTECT=true`): it carries every customer's name and email. A browser's session holds it when the
   * ID token's roles claim (`GANTRY_OIDC_ROLES_CLAIM`) names it. Default `support`.
   */
  role?: string;
  /**
   * How far, in bytes, a browser may fall behind before its stream is closed; default 1 MiB. It reconnects and
   * reloads, rather than the host buffering changes for it without bound.
   */
  maxBufferedBytes?: number;
  /**
   * The browser login (`webLogin()` of service.ts).
   *
   * @deprecated Not needed any more: `role` is checked against the browser's session too (its roles come from the ID
   * token), so the stream has one guard whether login is on or off.
   */
  login?: OidcLogin | undefined;
}

/** A file of the app, read once. */
interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

const ASSETS: Record<string, { file: string; type: string }> = {
  '/app/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/app/app.css': { file: 'app.css', type: 'text/css; charset=utf-8' },
};

/** How long a browser waits before it reconnects a closed stream, sent to it in the stream's first line. */
const RETRY_MS = 2_000;

/**
 * The web app of the example system as a host plugin: its three files under `/app/`, and `/app/events`, a stream of
 * Server-Sent Events with one `change` event per customer change that the `web` service consumed on this instance.
 *
 * The stream opens with a `ready` event (`{ "live": true }` when a `web` service feeds the broadcaster here), sends a
 * comment as heartbeat every `heartbeatMs`, and ends when the browser leaves or the host stops: Fastify's `preClose`
 * ends every open stream before the server waits for its connections, so an open browser never holds up a stop.
 *
 * @example
 * const broadcaster = new ChangeBroadcaster();
 * defineHost({ services: [customers, webService({ broadcaster })], plugins: [webApp(broadcaster)] });
 */
export function webApp(broadcaster: ChangeBroadcaster, options: WebAppOptions = {}): HostPlugin {
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const maxBufferedBytes = options.maxBufferedBytes ?? 1_048_576;
  // The session cookie travels with a browser's EventSource, and requireRole accepts it with its roles.
  const streamGuard = requireRole(options.role ?? 'support');
  return {
    name: 'web-app',
    async register(api) {
      const assets = await readAssets();
      // Per host: the streams this host has open, ended when it stops.
      const open = new Set<PassThrough>();

      const events = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
        const stream = new PassThrough();
        open.add(stream);
        // A write after the end (the host stopping between a change and its write) would be an error: skip it.
        const write = (text: string): void => {
          if (!stream.writableEnded && !stream.destroyed) stream.write(text);
        };
        write(`retry: ${RETRY_MS}\n\n${sseEvent('ready', { live: broadcaster.fed })}`);
        const unsubscribe = broadcaster.subscribe((event: BroadcastChange) => {
          if (stream.writableLength > maxBufferedBytes) {
            api.log.warn({ requestId: request.id, buffered: stream.writableLength }, 'browser too slow; stream closed');
            stream.destroy();
            return;
          }
          write(sseEvent('change', event.change, event.id));
        });
        const heartbeat = setInterval(() => write(': heartbeat\n\n'), heartbeatMs);
        // 'close' comes once whichever way the stream ends: the browser left (Fastify destroys the stream), the host
        // stopped (ended below), or a slow browser was dropped.
        stream.once('close', () => {
          clearInterval(heartbeat);
          unsubscribe();
          open.delete(stream);
        });
        return reply
          .header('content-type', 'text/event-stream; charset=utf-8')
          .header('cache-control', 'no-cache, no-transform')
          .header('x-accel-buffering', 'no')
          .send(stream);
      };

      api.routes((app) => {
        for (const [url, asset] of Object.entries(assets)) {
          app.get(url, async (request, reply) => {
            reply.header('cache-control', 'no-cache').header('etag', asset.etag);
            if (request.headers['if-none-match'] === asset.etag) return reply.code(304).send();
            return reply.type(asset.type).send(asset.body);
          });
        }
        // No HEAD twin: Fastify would drain the stream of a HEAD request and never end it.
        app.get('/app/events', { onRequest: streamGuard, exposeHeadRoute: false }, events);
        app.addHook('preClose', (done) => {
          for (const stream of open) stream.end();
          done();
        });
      });

      // Info, not a warning: a process that runs only workers serves the app too, and no browser is sent there.
      api.hook('onReady', () => {
        if (!broadcaster.fed) {
          api.log.info(
            'the web app is served without the web service: its browsers will see no live changes from this instance',
          );
        }
      });
    },
  };
}

/**
 * One Server-Sent Event. `data` is JSON on one line (JSON.stringify escapes line breaks inside strings), so the event
 * needs a single `data:` field.
 */
export function sseEvent(event: string, data: unknown, id?: string): string {
  return `${id === undefined ? '' : `id: ${id}\n`}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

async function readAssets(): Promise<Record<string, Asset>> {
  const dir = new URL('./assets/', import.meta.url);
  const entries = await Promise.all(
    Object.entries(ASSETS).map(async ([url, { file, type }]) => {
      const body = await readFile(new URL(file, dir));
      const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
      return [url, { body, type, etag }] as const;
    }),
  );
  return Object.fromEntries(entries);
}
