import { Command } from 'commander';
import { isGantryError } from '../errors/gantry-error.ts';
import { configCommand } from './commands/config.ts';
import { dbGenerateCommand, dbMigrateCommand, dbPendingCommand } from './commands/db.ts';
import { devCommand } from './commands/dev.ts';
import {
  jobsCancelCommand,
  jobsGetCommand,
  jobsListCommand,
  jobsRetryCommand,
  jobsSchedulesCommand,
} from './commands/jobs.ts';
import { openapiCommand } from './commands/openapi.ts';
import { runCommand } from './commands/run.ts';
import { servicesCommand } from './commands/services.ts';
import { startCommand } from './commands/start.ts';
import {
  streamsDeadLettersCommand,
  streamsListCommand,
  streamsReplayCommand,
  streamsTailCommand,
} from './commands/streams.ts';

const program = new Command('gantry')
  .description('Run and operate Gantry services. Reads the host file (gantry.config.ts) of the working directory.')
  .option('--host <file>', 'the host file', 'gantry.config.ts')
  .showHelpAfterError();

const hostOption = (): { host?: string } => program.opts<{ host?: string }>();

program
  .command('start')
  .description('start the services (all, or those named by name or group) and serve HTTP on PORT (default 8080)')
  .argument('[services...]', 'service names or groups')
  .action((services: string[]) => startCommand(services, hostOption()));

program
  .command('dev')
  .description('like start, restarting whenever a source file changes')
  .argument('[services...]', 'service names or groups')
  .action(async (services: string[]) => {
    process.exitCode = await devCommand(services, hostOption());
  });

program
  .command('openapi')
  .description('print the OpenAPI 3.1 document of the services, or write it with --out')
  .argument('[services...]', 'service names or groups')
  .option('-o, --out <file>', 'write to this file instead of stdout')
  .action((services: string[], options: { out?: string }) => openapiCommand(services, { ...hostOption(), ...options }));

program
  .command('config')
  .description('print the resolved config of GANTRY_ENV (default dev), with secrets masked')
  .argument('[services...]', 'service names or groups')
  .option('--json', 'print JSON instead of YAML')
  .action((services: string[], options: { json?: boolean }) =>
    configCommand(services, { ...hostOption(), ...options }),
  );

program
  .command('run')
  .description(
    'run an operator command of a service (its drivers and bus open, no consumers, no HTTP) and print the result',
  )
  .argument('<service>', 'the service')
  .argument('<command>', 'the command')
  .option('--input <json>', 'the input of the command, as JSON')
  .action((service: string, command: string, options: { input?: string }) =>
    runCommand(service, command, { ...hostOption(), ...options }),
  );

const streams = program
  .command('streams')
  .description("operate the streams of a running host through its admin API (/_gantry/streams; the 'ops' role in prod)")
  .option('--url <url>', 'the host to ask (default http://127.0.0.1:$PORT or 8080)')
  .option('--token <token>', 'a bearer token for the admin API');
const target = (): { url?: string; token?: string } => streams.opts<{ url?: string; token?: string }>();
streams
  .command('list')
  .description('streams and groups with lag, counters and dead letters waiting')
  .action(() => streamsListCommand(target()));
streams
  .command('dead-letters')
  .description('print the dead letters of a stream (reason, attempts, original) without removing them')
  .argument('<stream>', 'the stream (its dead letters are in <stream>.dlq)')
  .option('--max <n>', 'at most this many', '20')
  .action((stream: string, options: { max?: string }) =>
    streamsDeadLettersCommand(stream, { ...target(), ...options }),
  );
streams
  .command('replay')
  .description('publish the dead letters of a stream back to it')
  .argument('<stream>', 'the stream')
  .option('--max <n>', 'at most this many', '100')
  .action((stream: string, options: { max?: string }) => streamsReplayCommand(stream, { ...target(), ...options }));
streams
  .command('tail')
  .description('print new messages of a stream as JSON lines until interrupted')
  .argument('<stream>', 'the stream')
  .option('--count <n>', 'stop after this many')
  .action((stream: string, options: { count?: string }) => streamsTailCommand(stream, { ...target(), ...options }));

const db = program.command('db').description('database migrations: generate from the schema, review, apply');
db.command('generate')
  .description("write a migration for the difference between each service's drizzle schema and its last snapshot")
  .argument('[services...]', 'service names or groups')
  .option('--name <name>', 'a name for the migration file')
  .action((services: string[], options: { name?: string }) =>
    dbGenerateCommand(services, { ...hostOption(), ...options }),
  );
db.command('pending')
  .description('print the SQL of the migrations not yet applied to the configured database')
  .argument('[services...]', 'service names or groups')
  .action((services: string[]) => dbPendingCommand(services, hostOption()));
db.command('migrate')
  .description('apply pending migrations to the configured database')
  .argument('[services...]', 'service names or groups')
  .action((services: string[]) => dbMigrateCommand(services, hostOption()));

const jobs = program
  .command('jobs')
  .description("a service's background jobs and schedules: list, inspect, cancel, retry (its database, no workers)");
jobs
  .command('list')
  .description('list jobs, newest first')
  .argument('<service>', 'the service')
  .option('--task <task>', 'only this task')
  .option('--state <state>', 'only this state (queued, running, retrying, succeeded, dead, cancelled)')
  .option('--limit <n>', 'at most this many (default 50)')
  .option('--before <id>', 'only jobs created before this one (paging)')
  .option('--json', 'print JSON')
  .action(
    (service: string, options: { task?: string; state?: string; limit?: string; before?: string; json?: boolean }) =>
      jobsListCommand(service, { ...hostOption(), ...options }),
  );
jobs
  .command('get')
  .description("print one job's record as JSON")
  .argument('<service>', 'the service')
  .argument('<id>', 'the job id')
  .action((service: string, id: string) => jobsGetCommand(service, id, hostOption()));
jobs
  .command('cancel')
  .description('cancel an unfinished job')
  .argument('<service>', 'the service')
  .argument('<id>', 'the job id')
  .action((service: string, id: string) => jobsCancelCommand(service, id, hostOption()));
jobs
  .command('retry')
  .description('run a dead or cancelled job again, with its attempts afresh')
  .argument('<service>', 'the service')
  .argument('<id>', 'the job id')
  .action((service: string, id: string) => jobsRetryCommand(service, id, hostOption()));
jobs
  .command('schedules')
  .description("print the service's cron schedules with their last and next ticks")
  .argument('<service>', 'the service')
  .option('--json', 'print JSON')
  .action((service: string, options: { json?: boolean }) =>
    jobsSchedulesCommand(service, { ...hostOption(), ...options }),
  );
program
  .command('services')
  .description('list the live instances in the registry (GANTRY_REGISTRY): service, version, instance, address, age')
  .argument('[service]', 'only this service')
  .option('--json', 'print JSON')
  .action((name: string | undefined, options: { json?: boolean }) => servicesCommand(name, options));

try {
  await program.parseAsync();
} catch (error) {
  // Config and definition problems are the user's to fix: print the message alone, not a stack.
  process.stderr.write(
    `gantry: ${isGantryError(error) ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exitCode = 1;
}
