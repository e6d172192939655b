import { defineHost } from 'gantry';
import { observability } from 'gantry/observe';
import { customers } from '../../examples/customers/service.ts';
import { replicator } from '../../examples/replicator/service.ts';

/**
 * The customers and the replicator with tracing on (OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set), for tests that
 * run them as processes: `gantry --host test/support/traced-system.ts start customers`.
 */
export default defineHost({
  title: 'Gantry traced system',
  services: [customers, replicator],
  plugins: observability({ metrics: false, errors: false, dashboard: false }),
});
