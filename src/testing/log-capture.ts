import { Writable } from 'node:stream';

/** One captured log line, parsed. */
export type LogLine = Record<string, unknown> & { msg?: string; level?: number };

/** A log destination that keeps every line, parsed, for assertions. */
export class LogCapture extends Writable {
  readonly lines: LogLine[] = [];

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    for (const text of chunk.toString('utf8').split('\n')) {
      if (text.trim() !== '') this.lines.push(JSON.parse(text) as LogLine);
    }
    callback();
  }

  /** The lines that carry `field` = `value`. */
  where(field: string, value: unknown): LogLine[] {
    return this.lines.filter((line) => line[field] === value);
  }
}
