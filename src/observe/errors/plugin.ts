import type { GantryEnv } from '../../config/env.ts';
import { loadClient } from '../../db/load-client.ts';
import type { EventRun } from '../../host/hooks.ts';
import type { HostPlugin } from '../../host/plugin.ts';

/** Options of {@link sentryPlugin}. */
export interface SentryOptions {
  /** The project's DSN; default `SENTRY_DSN`. Without one the plugin does nothing (and loads nothing). */
  dsn?: string;
  /** The share of errors sent, 0 to 1: one number, or one per environment; default `SENTRY_SAMPLE_RATE`, then 1. */
  sampleRate?: number | Partial<Record<GantryEnv, number>>;
  /** Default `SENTRY_ENVIRONMENT`, then the host's env (`dev`, `test`, `qa`, `prod`). */
  environment?: string;
  /** Default `SENTRY_RELEASE`, else none. */
  release?: string;
  /** The variables read for the defaults above; default `process.env`. */
  variables?: Readonly<Record<string, string | undefined>>;
}

/** The error reporting plugin. */
export interface SentryPlugin extends HostPlugin {
  /** Waits until the errors captured so far are sent (or `timeoutMs` passes); false when some were not. */
  flush(timeoutMs?: number): Promise<boolean>;
}

/** The parts of `@sentry/node` the plugin uses, loaded only when a DSN is set. */
interface SentryClient {
  captureException(error: unknown, tags: Record<string, string>, trace: { trace_id: string; span_id: string }): void;
  flush(timeoutMs: number): Promise<boolean>;
  close(timeoutMs: number): Promise<boolean>;
}

/**
 * Reports failed events to Sentry when `SENTRY_DSN` (or `dsn`) is set: HTTP events that answered 5xx, consumer runs
 * and loops that threw. Each report is tagged with the service, its version, the event and its kind, and the request,
 * trace and span ids, so it can be found from a log line or a trace and the other way round. Refusals (4xx) are not
 * errors and are not sent.
 *
 * The SDK runs as its own client with no default integrations: it patches no module, installs no global handler and
 * sets up no OpenTelemetry of its own (tracing is {@link tracingPlugin}'s job).
 *
 * @example
 * createHost({ services, plugins: [sentryPlugin({ sampleRate: { prod: 0.5, dev: 0 } })] });
 */
export function sentryPlugin(options: SentryOptions = {}): SentryPlugin {
  let client: SentryClient | undefined;
  return {
    name: 'sentry',
    flush: async (timeoutMs = 2000) => (client ? client.flush(timeoutMs) : true),
    async register(api) {
      const variables = options.variables ?? process.env;
      const dsn = options.dsn ?? variables.SENTRY_DSN;
      if (!dsn) return;
      const env = api.info.env;
      const environment = options.environment ?? variables.SENTRY_ENVIRONMENT ?? env;
      const release = options.release ?? variables.SENTRY_RELEASE;
      const sampleRate = resolveSampleRate(options.sampleRate, env, variables.SENTRY_SAMPLE_RATE);
      const opened = await openSentry({ dsn, environment, sampleRate, ...(release ? { release } : {}) });
      client = opened;
      api.log.info({ environment, sampleRate }, 'reporting errors to Sentry');
      api.hook('onEventEnd', (run) => {
        if (!isReportable(run)) return;
        const { tracking } = run;
        opened.captureException(
          run.error,
          {
            service: run.service.name,
            version: run.service.version,
            event: run.event,
            event_kind: run.kind,
            request_id: tracking.requestId,
            trace_id: tracking.traceId,
            span_id: tracking.spanId,
            ...(run.status !== undefined ? { status: String(run.status) } : {}),
          },
          { trace_id: tracking.traceId, span_id: tracking.spanId },
        );
      });
      api.hook('onStop', async () => {
        await opened.close(2000);
      });
    },
  };
}

/** Failed runs worth a report: crashes and 5xx answers, never refusals. */
export function isReportable(run: EventRun): boolean {
  return run.outcome === 'failed' && (run.status ?? 500) >= 500;
}

/** The sample rate in force in `env`: the option (per env or for all), else the variable, else 1. */
export function resolveSampleRate(
  option: SentryOptions['sampleRate'],
  env: GantryEnv,
  variable: string | undefined,
): number {
  const chosen = typeof option === 'number' ? option : option?.[env];
  if (chosen !== undefined) return clamp(chosen);
  const parsed = variable === undefined || variable === '' ? Number.NaN : Number(variable);
  return Number.isFinite(parsed) ? clamp(parsed) : 1;
}

function clamp(rate: number): number {
  return Math.min(1, Math.max(0, rate));
}

async function openSentry(settings: {
  dsn: string;
  environment: string;
  sampleRate: number;
  release?: string;
}): Promise<SentryClient> {
  const sentry = await loadClient(() => import('@sentry/node'), '@sentry/node');
  const client = new sentry.NodeClient({
    ...settings,
    transport: sentry.makeNodeTransport,
    stackParser: sentry.defaultStackParser,
    integrations: [sentry.linkedErrorsIntegration()],
    enableRuntimeChannelInjection: false,
    enableOpenTelemetrySetup: false,
    sendClientReports: false,
  });
  client.init();
  const base = new sentry.Scope();
  base.setClient(client);
  return {
    captureException(error, tags, trace) {
      const scope = base.clone();
      scope.setTags(tags);
      scope.setContext('trace', trace);
      scope.captureException(error);
    },
    flush: async (timeoutMs) => await client.flush(timeoutMs),
    close: async (timeoutMs) => await client.close(timeoutMs),
  };
}
