import type { GantryEnv } from '../config/env.ts';
import type { Logger } from '../log/logger.ts';

/** What a driver is given when a host opens it for one service. */
export interface DriverOpenContext {
  /** The service that declared the driver. */
  service: string;
  /** The name the service gave the driver (`drivers: { db: database(...) }` → `db`). */
  alias: string;
  env: GantryEnv;
  /** The driver's section of the resolved config (`<service>.drivers.<alias>`), unvalidated. */
  config: Readonly<Record<string, unknown>>;
  /** A folder the host owns for embedded data (`.gantry/<service>` in dev), or null to keep data in memory. */
  dataDir: string | null;
  log: Logger;
}

/** An opened driver: the typed client handlers use, and what the host needs to watch and close it. */
export interface DriverHandle<TClient> {
  client: TClient;
  /** True when this handle runs an embedded stand-in (PGlite, in-memory) rather than a real server. */
  embedded: boolean;
  /** Resolves when the backing resource answers; rejects with the reason otherwise. Used by readiness. */
  check(): Promise<void>;
  /** Releases connections and files. Called once, after the service's shutdown hooks. */
  close(): Promise<void>;
}

/**
 * A named, configured client a service declares and finds typed in its context (Bootstrapper's "driver").
 * Its client library is loaded only when a host opens it, so a service that never uses a driver never loads it.
 *
 * @remarks The contract says nothing about pooling or retries: those belong to each driver and its config.
 */
export interface Driver<TClient> {
  /** The kind of driver (`database`, `redis`, `smtp`...): the CLI finds database drivers by it. */
  readonly kind: string;
  open(context: DriverOpenContext): Promise<DriverHandle<TClient>>;
}

/** The drivers of a service, by the name it uses for each. */
export type DriverMap = Record<string, Driver<unknown>>;

/** The clients a handler finds in `ctx.drivers`, typed from the service's driver map. */
export type DriverClients<D extends DriverMap> = { readonly [K in keyof D]: D[K] extends Driver<infer C> ? C : never };
