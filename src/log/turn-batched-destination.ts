import type { DestinationStream } from 'pino';

/** The writing end the destination hands its lines to: `process.stdout` in a host. */
export interface LineWriter {
  write(text: string): unknown;
}

/** Characters gathered after which they are written at once instead of at the end of the turn. */
const DEFAULT_MAX_PENDING = 64 * 1024;

/**
 * A pino destination that gathers the lines written during one turn of the event loop and hands them to the writer
 * in one call, after the turn's I/O callbacks (`setImmediate`), in the order they were written.
 *
 * @remarks Why not pino's default destination (sonic-boom in asynchronous mode): while one of its writes is under
 * way it appends each new line to a pending string and measures the UTF-8 length of that whole string again, so
 * under load every line costs a scan of all that was logged since the last write. On the HTTP path, with two lines
 * per request, that scan was the largest single cost of Gantry (and of bare Fastify with its default logger): see
 * docs/performance.md. Here a line costs an array push, and a turn's lines one join and one write.
 *
 * Node writes `process.stdout` synchronously when it is a file, and on Linux when it is a pipe or a terminal, so
 * the lines of a process that exits are not lost: {@link stdoutDestination} writes what is gathered from the
 * process's `exit` event. A process killed with SIGKILL loses the lines of its last turn. When the reader of a pipe
 * goes away, logging stops and the process goes on.
 */
export class TurnBatchedDestination implements DestinationStream {
  private pending: string[] = [];
  private pendingChars = 0;
  private scheduled = false;
  /** Set once the reader of the output has gone (a broken pipe): lines are dropped from then on. */
  private closed = false;
  private readonly writer: LineWriter;
  private readonly maxPending: number;

  /**
   * @param writer - where the gathered lines go.
   * @param maxPending - characters after which the lines gathered so far are written at once, so a long synchronous
   *   burst of logging holds a bounded amount of memory.
   */
  constructor(writer: LineWriter, maxPending = DEFAULT_MAX_PENDING) {
    this.writer = writer;
    this.maxPending = maxPending;
  }

  /** Gathers one line (pino hands complete lines, newline included). */
  write(line: string): void {
    if (this.closed) return;
    this.pending.push(line);
    this.pendingChars += line.length;
    if (this.pendingChars >= this.maxPending) this.flushSync();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flushScheduled);
    }
  }

  /** Writes what is gathered now. */
  flushSync(): void {
    if (this.pending.length === 0) return;
    const text = this.pending.length === 1 ? (this.pending[0] as string) : this.pending.join('');
    this.pending = [];
    this.pendingChars = 0;
    this.writer.write(text);
  }

  /**
   * Drops what is gathered and every line from now on: for when nothing reads the output any more (`EPIPE`, as when
   * a host's output is piped into `head`), which is no reason for the process to stop.
   */
  close(): void {
    this.closed = true;
    this.pending = [];
    this.pendingChars = 0;
  }

  /** pino's `logger.flush(cb)`: writes what is gathered, then calls back. */
  flush(callback?: (error?: Error) => void): void {
    try {
      this.flushSync();
    } catch (error) {
      callback?.(error as Error);
      return;
    }
    callback?.();
  }

  private readonly flushScheduled = (): void => {
    this.scheduled = false;
    this.flushSync();
  };
}

let stdout: TurnBatchedDestination | undefined;

/**
 * The process's one destination on `process.stdout`, shared by every logger of every host in the process so that
 * their lines stay in order, and written out when the process exits.
 */
export function stdoutDestination(): TurnBatchedDestination {
  if (stdout === undefined) {
    const destination = new TurnBatchedDestination(process.stdout);
    process.once('exit', () => destination.flushSync());
    // A broken pipe stops the logging, not the process, as pino's own destination does; any other error of stdout
    // is thrown as it would be with no listener.
    const onError = (error: NodeJS.ErrnoException): void => {
      if (error.code !== 'EPIPE') {
        process.stdout.off('error', onError);
        throw error;
      }
      destination.close();
    };
    process.stdout.on('error', onError);
    stdout = destination;
  }
  return stdout;
}
