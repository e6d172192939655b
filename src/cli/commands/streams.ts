import { GantryError } from '../../errors/gantry-error.ts';

/** Where a running host answers, and how to authenticate to its admin API. */
export interface AdminTarget {
  url?: string;
  token?: string;
}

function base(target: AdminTarget): string {
  return target.url ?? `http://127.0.0.1:${process.env.PORT ?? 8080}`;
}

async function admin(target: AdminTarget, method: string, path: string): Promise<unknown> {
  const headers: Record<string, string> = target.token ? { authorization: `Bearer ${target.token}` } : {};
  let response: Response;
  try {
    response = await fetch(`${base(target)}${path}`, { method, headers });
  } catch (error) {
    throw new GantryError(
      'GANTRY_ERR_CONFIG_INVALID',
      `no host answers at ${base(target)} (${(error as Error).message}); start one or pass --url`,
    );
  }
  const body = (await response.json()) as unknown;
  if (!response.ok)
    throw new GantryError(
      'GANTRY_ERR_CONFIG_INVALID',
      `${method} ${path} answered ${response.status}: ${JSON.stringify(body)}`,
    );
  return body;
}

interface StreamRow {
  stream: string;
  published: number;
  deadLetters: number | null;
  groups: {
    group: string;
    lag: number | null;
    delivered: number;
    acked: number;
    retried: number;
    deadLettered: number;
  }[];
}

/** `gantry streams list`: streams and groups with lag, this host's counters, and dead letters waiting. */
export async function streamsListCommand(target: AdminTarget): Promise<void> {
  const { bus, streams } = (await admin(target, 'GET', '/_gantry/streams')) as { bus: string; streams: StreamRow[] };
  const lines = [
    `bus: ${bus}`,
    'stream                          group              lag   acked  retried  dead  (dead letters waiting)',
  ];
  for (const row of streams) {
    if (row.groups.length === 0)
      lines.push(
        `${row.stream.padEnd(32)}${'(no consumer here)'.padEnd(19)}${'-'.padStart(4)}  published ${row.published}`,
      );
    for (const group of row.groups) {
      lines.push(
        `${row.stream.padEnd(32)}${group.group.padEnd(19)}${String(group.lag ?? '?').padStart(4)}${String(group.acked).padStart(8)}${String(group.retried).padStart(9)}${String(group.deadLettered).padStart(6)}  (${row.deadLetters ?? '?'})`,
      );
    }
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

/** `gantry streams dead-letters <stream>`: prints dead letters (reason, attempts, original) without removing them. */
export async function streamsDeadLettersCommand(
  stream: string,
  options: AdminTarget & { max?: string },
): Promise<void> {
  const letters = await admin(
    options,
    'GET',
    `/_gantry/streams/${encodeURIComponent(stream)}/dead-letters?max=${Number(options.max ?? 20)}`,
  );
  process.stdout.write(`${JSON.stringify(letters, null, 2)}\n`);
}

/** `gantry streams replay <stream>`: publishes dead letters back to their stream. */
export async function streamsReplayCommand(stream: string, options: AdminTarget & { max?: string }): Promise<void> {
  const result = (await admin(
    options,
    'POST',
    `/_gantry/streams/${encodeURIComponent(stream)}/dead-letters/replay?max=${Number(options.max ?? 100)}`,
  )) as {
    replayed: string[];
    kept: number;
  };
  process.stdout.write(
    `replayed ${result.replayed.length} message(s) to ${stream}${result.kept > 0 ? `; ${result.kept} undecodable kept` : ''}\n`,
  );
}

/** `gantry streams tail <stream>`: prints new messages of a stream as JSON lines until interrupted. */
export async function streamsTailCommand(stream: string, options: AdminTarget & { count?: string }): Promise<void> {
  const headers: Record<string, string> = options.token ? { authorization: `Bearer ${options.token}` } : {};
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  const response = await fetch(`${base(options)}/_gantry/streams/${encodeURIComponent(stream)}/tail`, {
    headers,
    signal: controller.signal,
  });
  if (!response.ok || !response.body)
    throw new GantryError('GANTRY_ERR_CONFIG_INVALID', `tail of ${stream} answered ${response.status}`);
  const limit = options.count === undefined ? Number.POSITIVE_INFINITY : Number(options.count);
  let printed = 0;
  let buffer = '';
  const decoder = new TextDecoder();
  try {
    for await (const chunk of response.body) {
      buffer += decoder.decode(chunk, { stream: true });
      for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = event.split('\n').find((line) => line.startsWith('data: '));
        if (!data) continue;
        process.stdout.write(`${data.slice(6)}\n`);
        if (++printed >= limit) {
          controller.abort();
          return;
        }
      }
    }
  } catch (error) {
    if (!controller.signal.aborted) throw error;
  }
}
