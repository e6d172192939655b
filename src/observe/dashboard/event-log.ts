import type { ServerResponse } from 'node:http';
import type { EventRun } from '../../host/hooks.ts';

/** One finished event run as the live log shows it. */
export interface LogEntry {
  /** End of the run, epoch ms. */
  at: number;
  kind: EventRun['kind'];
  service: string;
  event: string;
  outcome: 'succeeded' | 'failed';
  status?: number;
  durationMs: number;
  requestId: string;
  traceId: string;
  spanId: string;
  /** The error's message, for failed runs. */
  error?: string;
}

/**
 * The recent event runs, kept in a ring, and the dashboards listening to them over server-sent events. Each run is
 * turned into JSON once, whatever the number of listeners, and nothing is done for listeners that are not there.
 */
export class EventLog {
  private readonly entries: LogEntry[] = [];
  private readonly clients = new Set<ServerResponse>();

  private readonly size: number;

  constructor(size: number) {
    this.size = size;
  }

  /** Adds a finished run and sends it to every listener. */
  add(run: EventRun): void {
    const entry: LogEntry = {
      at: run.startedAt + (run.durationMs ?? 0),
      kind: run.kind,
      service: run.service.name,
      event: run.event,
      outcome: run.outcome ?? 'succeeded',
      durationMs: run.durationMs ?? 0,
      requestId: run.tracking.requestId,
      traceId: run.tracking.traceId,
      spanId: run.tracking.spanId,
    };
    if (run.status !== undefined) entry.status = run.status;
    if (run.outcome === 'failed') entry.error = run.error instanceof Error ? run.error.message : String(run.error);
    this.entries.push(entry);
    if (this.entries.length > this.size) this.entries.shift();
    if (this.clients.size === 0) return;
    const frame = `data: ${JSON.stringify(entry)}\n\n`;
    for (const client of this.clients) client.write(frame);
  }

  /** The kept runs, oldest first. */
  recent(): LogEntry[] {
    return [...this.entries];
  }

  /** Starts streaming to `response` (already answered 200 as `text/event-stream`), beginning with the kept runs. */
  listen(response: ServerResponse): void {
    // A first line sends the headers now, so the browser reports the stream open before any run ends.
    response.write(': connected\n\n');
    for (const entry of this.entries) response.write(`data: ${JSON.stringify(entry)}\n\n`);
    this.clients.add(response);
    response.on('close', () => this.clients.delete(response));
  }

  /** A comment line to every listener, so proxies and browsers keep idle streams open. */
  heartbeat(): void {
    for (const client of this.clients) client.write(': keep-alive\n\n');
  }

  /** Ends every stream (the host is stopping and would otherwise wait for them). */
  close(): void {
    for (const client of this.clients) client.end();
    this.clients.clear();
  }
}
