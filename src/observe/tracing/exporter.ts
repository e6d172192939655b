import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
import { loadClient } from '../../db/load-client.ts';

/** The variables that turn on OTLP export, as the OpenTelemetry specification names them. */
export type OtlpEnvironment = Readonly<Record<string, string | undefined>>;

/**
 * The URL spans are posted to over OTLP/HTTP, or undefined when export is off: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`
 * as is, else `OTEL_EXPORTER_OTLP_ENDPOINT` with `/v1/traces` appended (the specification's rule).
 */
export function otlpTracesUrl(environment: OtlpEnvironment): string | undefined {
  const traces = environment.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  if (traces) return traces;
  const base = environment.OTEL_EXPORTER_OTLP_ENDPOINT;
  if (!base) return undefined;
  return `${base.replace(/\/+$/, '')}/v1/traces`;
}

/**
 * Opens the OTLP/HTTP trace exporter. Its package loads only here, when export is on.
 *
 * @throws GantryError `GANTRY_ERR_DRIVER_MISSING_PACKAGE` when `@opentelemetry/exporter-trace-otlp-http` is not
 * installed.
 */
export async function openOtlpExporter(url: string, environment: OtlpEnvironment): Promise<SpanExporter> {
  const { OTLPTraceExporter } = await loadClient(
    () => import('@opentelemetry/exporter-trace-otlp-http'),
    '@opentelemetry/exporter-trace-otlp-http',
  );
  return new OTLPTraceExporter({ url, headers: parseHeaders(environment.OTEL_EXPORTER_OTLP_HEADERS) });
}

/** `OTEL_EXPORTER_OTLP_HEADERS`: `key=value` pairs joined by commas, values URL-encoded. */
function parseHeaders(value: string | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const pair of (value ?? '').split(',')) {
    const at = pair.indexOf('=');
    if (at <= 0) continue;
    headers[pair.slice(0, at).trim()] = decodeURIComponent(pair.slice(at + 1).trim());
  }
  return headers;
}
