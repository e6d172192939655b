import Type, { type Static } from 'typebox';
import { CallsConfigSchema } from '../calls/config.ts';
import { secret } from '../schema/index.ts';

const GrantsSchema = {
  /** Scopes the credential grants. */
  scopes: Type.Array(Type.String(), { default: [] }),
  /** Roles the credential holds. */
  roles: Type.Array(Type.String(), { default: [] }),
};

/** The auth settings of a host: `host.auth` in the config files. */
export const AuthConfigSchema = Type.Object(
  {
    /**
     * The methods of events that declare none, separated by commas (`bearer`, `bearer,apiKey`, `public`). Unset: such
     * events are public outside prod and refused at start in prod.
     */
    default: Type.Optional(Type.String({ 'x-gantry-env': 'GANTRY_AUTH_DEFAULT' })),
    /** Bearer JWTs. */
    jwt: Type.Object(
      {
        /** The identity provider's JWKS URL; keys are cached and refetched when a token names an unknown key. */
        jwksUrl: Type.Optional(Type.String({ 'x-gantry-env': 'GANTRY_JWT_JWKS_URL' })),
        /** Verification keys held locally instead: a JWKS document (JSON) or PEM public keys. */
        publicKeys: Type.Optional(Type.String({ 'x-gantry-env': 'GANTRY_JWT_PUBLIC_KEYS' })),
        /** The HS256 shared secret; used only when `algorithms` lists HS256. */
        secret: Type.Optional(secret(Type.String({ minLength: 32, 'x-gantry-env': 'GANTRY_JWT_SECRET' }))),
        /** The `iss` every token must carry. */
        issuer: Type.Optional(Type.String({ 'x-gantry-env': 'GANTRY_JWT_ISSUER' })),
        /** The `aud` every token must carry (one of, separated by commas). */
        audience: Type.Optional(Type.String({ 'x-gantry-env': 'GANTRY_JWT_AUDIENCE' })),
        /** Accepted signature algorithms, separated by commas; HS256 only when listed here. */
        algorithms: Type.String({ default: 'RS256,ES256,EdDSA', 'x-gantry-env': 'GANTRY_JWT_ALGORITHMS' }),
        /** Tolerance for `exp` and `nbf` against clock drift, in seconds. */
        clockSkewSeconds: Type.Integer({
          minimum: 0,
          maximum: 300,
          default: 30,
          'x-gantry-env': 'GANTRY_JWT_CLOCK_SKEW_SECONDS',
        }),
        /** Claim holding the scopes: a space-separated string or an array. */
        scopesClaim: Type.String({ default: 'scope' }),
        /** Claim holding the roles, a dotted path for nested claims (`realm_access.roles`). */
        rolesClaim: Type.String({ default: 'roles' }),
        /** How long fetched JWKS keys are trusted before they are fetched again, in seconds. */
        jwksCacheSeconds: Type.Integer({ minimum: 1, default: 600 }),
        /** Least time between two fetches of the JWKS, in seconds: bounds what tokens naming unknown keys can cost. */
        jwksCooldownSeconds: Type.Integer({ minimum: 0, default: 30 }),
      },
      { default: {} },
    ),
    /** API keys, stored as hashes (`hashApiKey`); JSON in `GANTRY_API_KEYS`. */
    apiKeys: Type.Array(
      Type.Object({ id: Type.String(), hash: Type.String(), subject: Type.Optional(Type.String()), ...GrantsSchema }),
      { default: [], 'x-gantry-env': 'GANTRY_API_KEYS' },
    ),
    /** The header API keys travel in. */
    apiKeyHeader: Type.String({ default: 'x-api-key', 'x-gantry-env': 'GANTRY_API_KEY_HEADER' }),
    /** Basic-auth users with scrypt password hashes (`hashPassword`); JSON in `GANTRY_BASIC_USERS`. */
    basicUsers: Type.Array(Type.Object({ username: Type.String(), hash: Type.String(), ...GrantsSchema }), {
      default: [],
      'x-gantry-env': 'GANTRY_BASIC_USERS',
    }),
    /** The secret service-to-service tokens are signed with (HS256); shared by the services of one system. */
    serviceSecret: Type.Optional(secret(Type.String({ minLength: 32, 'x-gantry-env': 'GANTRY_SERVICE_SECRET' }))),
    /** The previous service secret, still accepted while a rotation rolls out. */
    servicePreviousSecret: Type.Optional(
      secret(Type.String({ minLength: 32, 'x-gantry-env': 'GANTRY_SERVICE_PREVIOUS_SECRET' })),
    ),
    /** Longest lifetime a service token may have (`exp` − `iat`), in seconds. */
    serviceTokenMaxAgeSeconds: Type.Integer({ minimum: 1, maximum: 3600, default: 300 }),
  },
  { default: {} },
);

/** The resolved auth settings. */
export type AuthConfig = Static<typeof AuthConfigSchema>;

/**
 * The host's own settings: `host:` in the config files, or the environment variable named by `x-gantry-env`.
 */
export const HostConfigSchema = Type.Object({
  port: Type.Integer({ minimum: 0, maximum: 65535, default: 8080, 'x-gantry-env': 'PORT' }),
  address: Type.String({ default: '0.0.0.0', 'x-gantry-env': 'HOST' }),
  /**
   * The bus URL: `memory:`, `pglite:<dir>`, `postgres://`, `redis://`, `nats://`, `amqp://`, `kafka://`. Unset, the
   * host keeps its messages in embedded PGlite under the data folder (a restart loses nothing), or in memory in tests.
   */
  bus: Type.Optional(Type.String({ 'x-gantry-env': 'GANTRY_BUS' })),
  /** How long start-up waits for an unreachable broker before it gives up. */
  busConnectTimeoutMs: Type.Integer({ minimum: 0, default: 60_000, 'x-gantry-env': 'GANTRY_BUS_CONNECT_TIMEOUT_MS' }),
  /** The default URL of every database driver that sets none itself; none means embedded PGlite. */
  databaseUrl: Type.Optional(Type.String({ 'x-gantry-env': 'DATABASE_URL' })),
  /** Where embedded data (PGlite) lives in dev; tests keep it in memory. */
  dataDir: Type.String({ default: '.gantry', 'x-gantry-env': 'GANTRY_DATA_DIR' }),
  /** Let prod run on embedded defaults (PGlite, the in-memory bus). Off by default: they lose data across machines. */
  allowEmbedded: Type.Boolean({ default: false, 'x-gantry-env': 'GANTRY_ALLOW_EMBEDDED' }),
  eventTimeoutMs: Type.Integer({ minimum: 1, default: 30_000, 'x-gantry-env': 'GANTRY_EVENT_TIMEOUT_MS' }),
  /**
   * Keep every message the outbox relay sent, marked sent, for a day (a record of what each service emitted). Off,
   * only messages with an idempotency key are kept that long (a repeat of the key is dropped while they are); the
   * others are deleted once sent.
   */
  outboxKeepSent: Type.Boolean({ default: false, 'x-gantry-env': 'GANTRY_OUTBOX_KEEP_SENT' }),
  /**
   * After SIGTERM, how long readiness answers 503 (and new requests are refused with 503) before the listener closes,
   * so load balancers see the instance leave before its port does. Counts within `shutdownTimeoutMs`.
   */
  stopGraceMs: Type.Integer({ minimum: 0, default: 0, 'x-gantry-env': 'GANTRY_STOP_GRACE_MS' }),
  shutdownTimeoutMs: Type.Integer({ minimum: 1, default: 10_000, 'x-gantry-env': 'GANTRY_SHUTDOWN_TIMEOUT_MS' }),
  bodyLimitBytes: Type.Integer({ minimum: 1, default: 1_048_576, 'x-gantry-env': 'GANTRY_BODY_LIMIT_BYTES' }),
  /** Largest message a consumer accepts, in bytes of its JSON data (larger ones are dead-lettered); 0 for no limit. */
  maxMessageBytes: Type.Integer({ minimum: 0, default: 1_048_576, 'x-gantry-env': 'GANTRY_MAX_MESSAGE_BYTES' }),
  logLevel: Type.String({ default: 'info', 'x-gantry-env': 'LOG_LEVEL' }),
  /** Serve the OpenAPI document and the docs UI. */
  docs: Type.Boolean({ default: true, 'x-gantry-env': 'GANTRY_DOCS' }),
  /** Who may call the HTTP events: the host default and the credentials each method checks. See docs/security.md. */
  auth: AuthConfigSchema,
  /** Calls to other services: registry, RPC transport, and resilience policies per client. See docs/calls.md. */
  calls: CallsConfigSchema,
  /** Admin endpoints (`/metrics`, `/_gantry`, job and stream admin) guarded by `requireRole`. */
  admin: Type.Object(
    {
      /** Require credentials and the role on admin endpoints; on by default in prod only. */
      protect: Type.Optional(Type.Boolean({ 'x-gantry-env': 'GANTRY_ADMIN_PROTECT' })),
    },
    { default: {} },
  ),
  /** Cross-origin requests from browsers (`@fastify/cors`). */
  cors: Type.Object(
    {
      /** `*`, or origins separated by commas (`https://app.example.com,https://admin.example.com`). Unset: any in dev, none elsewhere. */
      origins: Type.Optional(Type.String({ 'x-gantry-env': 'GANTRY_CORS_ORIGINS' })),
      /** Allow cookies and `Authorization` on cross-origin requests (never with `*`). */
      credentials: Type.Boolean({ default: false, 'x-gantry-env': 'GANTRY_CORS_CREDENTIALS' }),
      maxAgeSeconds: Type.Integer({ minimum: 0, default: 600, 'x-gantry-env': 'GANTRY_CORS_MAX_AGE_SECONDS' }),
      /**
       * Policies of single services by name, applied to their routes instead of the host's and winning over the
       * service's own `cors`; JSON in `GANTRY_CORS_SERVICES` (`{"orders":{"origins":"https://shop.example.com"}}`).
       */
      services: Type.Record(
        Type.String(),
        Type.Object({
          /** `*`, or origins separated by commas. Unset: any in dev, none elsewhere. */
          origins: Type.Optional(Type.String()),
          /** Default false. (Defaults are not applied inside records: the host fills these in.) */
          credentials: Type.Optional(Type.Boolean()),
          /** Default 600. */
          maxAgeSeconds: Type.Optional(Type.Integer({ minimum: 0 })),
        }),
        { default: {}, 'x-gantry-env': 'GANTRY_CORS_SERVICES' },
      ),
    },
    { default: {} },
  ),
  /** Security headers on every answer (`@fastify/helmet`). */
  securityHeaders: Type.Boolean({ default: true, 'x-gantry-env': 'GANTRY_SECURITY_HEADERS' }),
  /** Requests per client per window, host-wide (`@fastify/rate-limit`); events may set their own `rateLimit`. */
  rateLimit: Type.Object(
    {
      /** Requests per client and window across all events; 0 turns the host-wide limit off. */
      max: Type.Integer({ minimum: 0, default: 0, 'x-gantry-env': 'GANTRY_RATE_LIMIT_MAX' }),
      windowMs: Type.Integer({ minimum: 1, default: 60_000, 'x-gantry-env': 'GANTRY_RATE_LIMIT_WINDOW_MS' }),
      /** A Redis URL to count in (shared by every instance); in memory per instance when unset. */
      redisUrl: Type.Optional(secret(Type.String({ 'x-gantry-env': 'GANTRY_RATE_LIMIT_REDIS' }))),
    },
    { default: {} },
  ),
  /**
   * Which proxies to trust for the client address (`X-Forwarded-For`): `true`, a hop count, or addresses and CIDRs
   * separated by commas. Unset: the socket's peer is the client.
   */
  trustProxy: Type.Optional(Type.String({ 'x-gantry-env': 'GANTRY_TRUST_PROXY' })),
  /** Size limits of a request beyond `bodyLimitBytes`. */
  limits: Type.Object(
    {
      /** Largest request line plus headers, in bytes (431 past it). */
      headerBytes: Type.Integer({ minimum: 1024, default: 16_384, 'x-gantry-env': 'GANTRY_MAX_HEADER_BYTES' }),
      /** Longest URL, path and query (414 past it). */
      urlLength: Type.Integer({ minimum: 64, default: 8_192, 'x-gantry-env': 'GANTRY_MAX_URL_LENGTH' }),
      /** Deepest nesting of objects and arrays in a JSON body (400 past it). */
      jsonDepth: Type.Integer({ minimum: 1, default: 64, 'x-gantry-env': 'GANTRY_MAX_JSON_DEPTH' }),
    },
    { default: {} },
  ),
  /** Deadlines against slow clients. */
  timeouts: Type.Object(
    {
      /** Time to receive the whole request, headers and body (408 past it); 0 turns it off. */
      requestMs: Type.Integer({ minimum: 0, default: 30_000, 'x-gantry-env': 'GANTRY_REQUEST_TIMEOUT_MS' }),
      /** Time to receive the request line and headers (408 past it); at most `requestMs`. */
      headersMs: Type.Integer({ minimum: 1, default: 10_000, 'x-gantry-env': 'GANTRY_HEADERS_TIMEOUT_MS' }),
      /**
       * Idle time after which a socket is closed, including while a handler runs: when set, keep it above the longest
       * event timeout. 0 (the default) leaves idle sockets to `keepAliveTimeout`.
       */
      connectionMs: Type.Integer({ minimum: 0, default: 0, 'x-gantry-env': 'GANTRY_CONNECTION_TIMEOUT_MS' }),
    },
    { default: {} },
  ),
});

/** The resolved host settings. */
export type HostConfig = Static<typeof HostConfigSchema>;
