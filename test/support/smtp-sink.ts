import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

/** A mail as the sink saw it. */
export interface ReceivedMail {
  messageId: string;
  subject: string;
  recipients: string[];
  from: string;
}

/** A running SMTP sink process. */
export interface SmtpSink {
  url: string;
  mails: ReceivedMail[];
  stop(): Promise<void>;
}

/** Starts test/fixtures/smtp-sink.ts in its own process and collects what it receives. */
export async function startSmtpSink(port = 0): Promise<SmtpSink> {
  const fixture = new URL('../fixtures/smtp-sink.ts', import.meta.url).pathname;
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', fixture], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, SMTP_PORT: String(port) },
  });
  const mails: ReceivedMail[] = [];
  const bound = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`smtp sink exited with ${code}`)));
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      const parsed = JSON.parse(line) as { port?: number } & ReceivedMail;
      if (parsed.port !== undefined) resolve(parsed.port);
      else mails.push(parsed);
    });
  });
  return {
    url: `smtp://127.0.0.1:${bound}`,
    mails,
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    },
  };
}
