import { readFile } from 'node:fs/promises';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { GantryError } from '../../errors/gantry-error.ts';
import type { DeadLetterInfo } from '../../host/hooks.ts';
import type { HostInfo } from '../../host/info.ts';
import type { HostPlugin } from '../../host/plugin.ts';
import { underAny } from '../http-labels.ts';
import { withTimeout } from '../timeout.ts';
import type { SpanStore } from '../tracing/span-store.ts';
import { EventLog } from './event-log.ts';
import { RequestSeries } from './series.ts';
import { buildTopology } from './topology.ts';

/** Options of {@link dashboardPlugin}. */
export interface DashboardOptions {
  /** Serve the dashboard; default true in `dev` only. In prod, turn it on deliberately (and pass `authorize`). */
  enabled?: boolean;
  /** Where it is served; default `/_gantry`. */
  path?: string;
  /**
   * Decides who may see it, per request (every page and API call). Returning `false` refuses with a 404, so the
   * dashboard's existence is not disclosed; throwing answers with the error thrown (a guard such as
   * `requireRole('ops')` from `gantry/auth` fits as it is: it throws 401 or 403 and returns nothing to allow).
   * Default: everyone. The Streams panel's dead-letter view and its Replay button call the host's stream admin API
   * (`/_gantry/streams`, guarded by `requireRole('ops')`) with the same browser credentials, so in prod
   * `authorize: requireRole('ops')` gives the whole dashboard one rule.
   */
  authorize?: (
    request: FastifyRequest,
    reply: FastifyReply,
  ) => boolean | undefined | Promise<boolean | undefined> | Promise<void>;
  /** Where recent traces come from: the tracing plugin's store (`tracingPlugin().store`). Without it, no traces. */
  traces?: SpanStore;
  /** Event runs the live log keeps; default 200. */
  logSize?: number;
  /** Minutes of request rate, error rate and latency charted; default 15. */
  windowMinutes?: number;
  /** How long the streams view waits for the bus to tell each group's lag; default 1000 ms. */
  lagTimeoutMs?: number;
}

/** A dead letter as the dashboard lists it. */
export interface DeadLetterEntry {
  at: number;
  stream: string;
  group: string;
  reason: string;
  messageId?: string;
}

const ASSETS: Record<string, string> = {
  'dashboard.js': 'application/javascript; charset=utf-8',
  'dashboard.css': 'text/css; charset=utf-8',
};
const DEAD_LETTERS_KEPT = 50;
const HEARTBEAT_MS = 15_000;

/**
 * The development dashboard at `/_gantry`: the running services and how streams connect them, a live log of event
 * runs (server-sent events), recent traces with a span waterfall, stream counters with lag, each stream's dead letters
 * (count, the first few with their reason, and a Replay button calling the stream admin API), request
 * charts over the last minutes, and a form to try any HTTP event from the OpenAPI document. Plain HTML, CSS and
 * JavaScript served from this folder: no CDN, no build step.
 *
 * @example
 * const tracing = tracingPlugin();
 * createHost({ services, plugins: [tracing, dashboardPlugin({ traces: tracing.store })] });
 */
export function dashboardPlugin(options: DashboardOptions = {}): HostPlugin {
  return {
    name: 'dashboard',
    register(api) {
      if (!(options.enabled ?? api.info.env === 'dev')) return;
      const base = (options.path ?? '/_gantry').replace(/\/+$/, '');
      const log = new EventLog(options.logSize ?? 200);
      const series = new RequestSeries((options.windowMinutes ?? 15) * 60_000, 5_000);
      const deadLetters: DeadLetterEntry[] = [];
      // Probes, scrapes and the dashboard's own polling are not traffic worth charting.
      const charted = ['/health/', '/metrics', base];
      api.hook('onEventEnd', (run) => log.add(run));
      api.hook('onDeadLetter', (info) => {
        deadLetters.push(deadLetterEntry(info));
        if (deadLetters.length > DEAD_LETTERS_KEPT) deadLetters.shift();
      });
      const heartbeat = setInterval(() => log.heartbeat(), HEARTBEAT_MS);
      heartbeat.unref();
      api.hook('onStop', () => clearInterval(heartbeat));
      api.routes((app) => {
        app.addHook('onResponse', (request, reply, done) => {
          if (!underAny(request.url, charted)) series.record(reply.statusCode, reply.elapsedTime);
          done();
        });
        // Open event streams would hold the server's close until they end.
        app.addHook('preClose', (done) => {
          log.close();
          done();
        });
        app.register(
          async (scope) => {
            const authorize = options.authorize;
            if (authorize !== undefined) {
              scope.addHook('onRequest', async (request, reply) => {
                if ((await authorize(request, reply)) === false) {
                  throw new GantryError('GANTRY_ERR_HTTP_NOT_FOUND', `no route for ${request.method} ${request.url}`);
                }
              });
            }
            registerPages(scope, base);
            scope.get('/api/topology', async () => ({
              env: api.info.env,
              uptimeSeconds: api.info.uptimeSeconds(),
              ...buildTopology(api.info.services),
              // The targets this host calls, and every live instance the registry knows (other processes included;
              // left out when the registry is slower to answer than the lag timeout).
              calls: api.info.callStats().map(({ target, breaker }) => ({ target, breaker })),
              instances: (await withTimeout(api.info.liveInstances(), options.lagTimeoutMs ?? 1000)) ?? [],
            }));
            scope.get('/api/log', async () => ({ entries: log.recent() }));
            scope.get('/api/events', (request, reply) => {
              reply.hijack();
              reply.raw.writeHead(200, {
                'content-type': 'text/event-stream; charset=utf-8',
                'cache-control': 'no-cache',
                connection: 'keep-alive',
                'x-accel-buffering': 'no',
                'x-request-id': request.id,
              });
              log.listen(reply.raw);
            });
            scope.get('/api/series', async () => ({ bucketMs: series.bucketMs, points: series.points() }));
            scope.get('/api/streams', async () => ({
              streams: await streamRows(api.info, options.lagTimeoutMs ?? 1000),
              deadLetters: [...deadLetters].reverse(),
            }));
            scope.get('/api/work', async () => {
              const timeoutMs = options.lagTimeoutMs ?? 1000;
              const [jobs, outbox] = await Promise.all([
                withTimeout(api.info.jobCounts(), timeoutMs),
                withTimeout(api.info.outboxBacklog(), timeoutMs),
              ]);
              // Left out (null) when a database is slower to answer than the lag timeout.
              return { calls: api.info.callStats(), jobs: jobs ?? null, outbox: outbox ?? null };
            });
            scope.get('/api/traces', async () => ({
              enabled: options.traces !== undefined,
              traces: options.traces?.recent(50) ?? [],
            }));
            scope.get<{ Params: { traceId: string } }>('/api/traces/:traceId', async (request) => {
              const spans = options.traces?.trace(request.params.traceId) ?? [];
              if (spans.length === 0) {
                throw new GantryError('GANTRY_ERR_HTTP_NOT_FOUND', `trace ${request.params.traceId} is not kept`);
              }
              return { traceId: request.params.traceId, spans };
            });
          },
          { prefix: base },
        );
      });
      api.log.info({ path: base }, 'dashboard on');
    },
  };
}

/** The page and its two assets, read from disk once and kept. */
function registerPages(scope: FastifyInstance, base: string): void {
  const cache = new Map<string, Buffer>();
  const asset = async (file: string): Promise<Buffer> => {
    let body = cache.get(file);
    if (body === undefined) {
      body = await readFile(new URL(`./assets/${file}`, import.meta.url));
      cache.set(file, body);
    }
    return body;
  };
  const page = async (): Promise<string> => (await asset('index.html')).toString('utf8').replaceAll('{{base}}', base);
  scope.get('/', async (_request, reply) => reply.type('text/html; charset=utf-8').send(await page()));
  scope.get<{ Params: { file: string } }>('/assets/:file', async (request, reply) => {
    const type = ASSETS[request.params.file];
    if (type === undefined) return reply.callNotFound();
    return reply
      .type(type)
      .header('cache-control', 'no-cache')
      .send(await asset(request.params.file));
  });
}

function deadLetterEntry(info: DeadLetterInfo): DeadLetterEntry {
  const entry: DeadLetterEntry = { at: Date.now(), stream: info.stream, group: info.group, reason: info.reason };
  if (info.envelope) entry.messageId = info.envelope.id;
  return entry;
}

/** The counters of one stream (publishes) or of one group of it, with the group's lag when the bus tells it. */
export type StreamRow = ReturnType<HostInfo['streamCounters']>[number] & { lag?: number };

/** Counters of every stream and group, with the lag of each consumer group (left out when the bus is slow to say). */
async function streamRows(info: HostInfo, lagTimeoutMs: number): Promise<StreamRow[]> {
  const counters = info.streamCounters();
  return Promise.all(
    counters.map(async (entry) => {
      if (entry.group === undefined) return entry;
      const stats = await withTimeout(info.streamStats(entry.stream, entry.group), lagTimeoutMs);
      return stats?.lag === undefined ? entry : { ...entry, lag: stats.lag };
    }),
  );
}
