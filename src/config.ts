import { resolve } from 'node:path';
import { z } from 'zod';
import { criticalRuleSchema, type CriticalRule } from './reading/rules.ts';
import { DEFAULT_NATIONAL_ID_SYSTEM } from './identity/patient-identity.ts';

/** Where the project lives: tools, data and fixtures are found relative to it. */
export const projectRoot = resolve(import.meta.dirname, '..');

/** The documented demo token secret: fine on a laptop, refused in production. */
export const DEMO_TOKEN_SECRET = 'demo-only-token-secret-change-me-0000000000';

/** A comma-separated list of `host` or `host:port`. */
const hostList = z
  .string()
  .default('')
  .transform((text) => text.split(',').map((host) => host.trim()).filter(Boolean))
  .refine((hosts) => hosts.every((host) => /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/.test(host)), 'host or host:port, comma-separated');

const booleanFlag = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((value) => value === 'true' || value === '1' || value === 'yes');

const configSchema = z.object({
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: z.coerce.number().int().min(0).max(65535).default(4000),
  /** A MongoDB connection string; when absent the hub runs an embedded FerretDB. */
  MONGODB_URI: z.string().regex(/^mongodb(\+srv)?:\/\//, 'must start with mongodb:// or mongodb+srv://').optional(),
  MONGODB_DB: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,60}$/, 'letters, digits, _ and - only')
    .default('consortium_hub'),
  /** Where the embedded FerretDB keeps its files. */
  DATA_DIR: z.string().min(1).default(resolve(projectRoot, 'data')),
  /** The hub's address as its users reach it (e.g. https://hub.example.cn), for the links it hands out; default: where it listens. */
  PUBLIC_BASE_URL: z
    .string()
    .regex(/^https?:\/\/[^/?#\s]+(\/[^?#\s]*)?$/, 'an http(s) URL without query, e.g. https://hub.example.cn')
    .transform((url) => url.replace(/\/+$/, ''))
    .optional(),
  /** The embedded FerretDB binary; built there from the Go module proxy when missing. */
  FERRETDB_BIN: z.string().min(1).default(resolve(projectRoot, '.tools', 'bin', 'ferretdb')),
  EMBEDDED_DB_PORT: z.coerce.number().int().min(1).max(65535).default(27018),
  /** Port of the embedded PostgreSQL under FerretDB (loopback only). */
  EMBEDDED_POSTGRES_PORT: z.coerce.number().int().min(1).max(65535).default(27019),
  /** auto: PostgreSQL when installed (and the data folder holds no SQLite data), else SQLite. */
  EMBEDDED_DB_BACKEND: z.enum(['auto', 'postgresql', 'sqlite']).default('auto'),
  /** With MONGODB_URI pointing at FerretDB on PostgreSQL: its PostgreSQL database, so the hub can create its GIN indexes there. */
  FERRETDB_POSTGRESQL_URL: z.string().regex(/^postgres(ql)?:\/\//, 'must start with postgres://').optional(),
  /** How long one database operation may wait for a reachable server before failing. */
  DB_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(3000),
  /** How long one database operation may run once sent (a slow scan on FerretDB, a busy server) before it fails. */
  DB_OPERATION_TIMEOUT_MS: z.coerce.number().int().min(1000).max(3_600_000).default(120_000),
  /** Hosts (`host` or `host:port`, comma-separated) the member sync may reach over plain http: a member's private network. */
  SYNC_HTTP_HOSTS: hostList,
  /** Hosts the member sync may reach although they are this machine's, loopback or link-local (a member's server beside the hub). */
  SYNC_ALLOWED_HOSTS: hostList,
  /** The longest free text (a referral's reason or notes, a report's conclusion) the hub's mutations take. */
  MAX_TEXT_LENGTH: z.coerce.number().int().min(100).max(1_000_000).default(10_000),
  /** How often an open WebSocket's token is checked again: a revoked client's subscriptions end within this time. */
  SOCKET_RECHECK_MS: z.coerce.number().int().min(100).max(600_000).default(5000),
  /** How long start-up waits for the embedded PostgreSQL and FerretDB, and for the database to accept the hub's connection, however busy the machine. */
  STARTUP_TIMEOUT_MS: z.coerce.number().int().min(1000).max(86_400_000).default(600_000),
  /** Seed the demo consortium when the embedded database starts empty. */
  SEED_DEMO: booleanFlag.default(true),
  /** A list (`TList`) refuses with an error when more resources than this match. */
  LIST_MAX_RESULTS: z.coerce.number().int().min(1).max(10_000).default(1000),
  /** Page size of a connection when `_count` is not given (the largest is LIST_MAX_RESULTS). */
  DEFAULT_COUNT: z.coerce.number().int().min(1).max(10_000).default(100),
  MAX_BODY_BYTES: z.coerce.number().int().min(1024).max(64 * 1024 * 1024).default(4 * 1024 * 1024),
  PLAYGROUND_ENABLED: booleanFlag.default(true),
  INTROSPECTION_ENABLED: booleanFlag.default(true),
  /** How long SIGTERM waits for in-flight requests before closing connections. */
  SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).max(600_000).default(15_000),
  /** Identifier system of the resident national ID number (居民身份证号). */
  NATIONAL_ID_SYSTEM: z.string().min(1).default(DEFAULT_NATIONAL_ID_SYSTEM),
  LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
  /** `production` refuses the demo token secret and demo client secrets. */
  NODE_ENV: z.string().default('development'),
  /** Signs access tokens (HS256); at least 32 characters. The demo default is refused when NODE_ENV=production. */
  TOKEN_SECRET: z.string().min(32, 'at least 32 characters').default(DEMO_TOKEN_SECRET),
  TOKEN_TTL_SECONDS: z.coerce.number().int().min(30).max(86_400).default(900),
  /** false: every request acts as an unrestricted caller without audit (benchmarks, local tests); refused in production. */
  AUTH_REQUIRED: booleanFlag.default(true),
  /** Largest depth of a GraphQL operation (fields inside fields), checked before it runs. */
  MAX_QUERY_DEPTH: z.coerce.number().int().min(2).max(100).default(12),
  /** Largest number of tokens (names, punctuation, values) in a GraphQL document; longer ones are refused while parsing. */
  MAX_QUERY_TOKENS: z.coerce.number().int().min(100).max(1_000_000).default(10_000),
  /** Largest cost of an operation: every field counts 1, inside lists times what the list can return (its _count, else the most it may). */
  MAX_QUERY_COST: z.coerce.number().int().min(10).max(100_000_000).default(1_000_000),
  /** Most aliases in one operation (each alias of a list is a search of its own). */
  MAX_QUERY_ALIASES: z.coerce.number().int().min(1).max(10_000).default(30),
  /** Most fields written in one document. */
  MAX_QUERY_SELECTIONS: z.coerce.number().int().min(10).max(100_000).default(1500),
  /** A request weighs ceil(cost / this) units of the per-minute rate limit (at least 1). */
  RATE_LIMIT_COST_UNIT: z.coerce.number().int().min(1).max(100_000_000).default(10_000),
  /** Requests of one client that one instance works on at once; more wait for a turn. */
  MAX_CONCURRENT_REQUESTS_PER_CLIENT: z.coerce.number().int().min(1).max(1000).default(4),
  /** How long a request waits for its client's turn before RATE_LIMITED. */
  CONCURRENCY_WAIT_MS: z.coerce.number().int().min(0).max(600_000).default(5000),
  /** Failed logins of one client id in 5 minutes after which the token endpoint refuses it until the window ends. */
  LOGIN_FAILURES_PER_CLIENT: z.coerce.number().int().min(1).max(100_000).default(10),
  /** Failed logins from one source address in 5 minutes after which the token endpoint refuses it. */
  LOGIN_FAILURES_PER_SOURCE: z.coerce.number().int().min(1).max(100_000).default(100),
  /** Requests per client per minute; more get RATE_LIMITED. */
  RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(1).max(1_000_000).default(600),
  /** How long one request may take before it is answered with TIMEOUT. */
  REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).max(3_600_000).default(30_000),
  MAINTENANCE_INTERVAL_MS: z.coerce.number().int().min(1000).max(86_400_000).default(60_000),
  /** How often each instance looks for due background jobs (the re-apply of an edited code map). */
  JOB_INTERVAL_MS: z.coerce.number().int().min(100).max(86_400_000).default(2_000),
  /**
   * Threads that validate large write batches (imports, transactions); read by src/fhir/validation-pool.ts from
   * the environment, checked here. Unset: one fewer than the cores, at least one; 0: on the main thread.
   */
  VALIDATION_THREADS: z.coerce.number().int().min(0).max(64).optional(),
  RECOGNITION_MARK: z.string().min(1).max(20).default('HR'),
  /** Minutes the requesting side has to acknowledge a critical value before it is escalated. */
  CRITICAL_ACK_MINUTES: z.coerce.number().int().min(1).max(1440).default(15),
  /** The critical-value rules as a JSON array (src/reading/rules.ts `criticalRuleSchema`); unset: the defaults. */
  CRITICAL_RULES: z
    .string()
    .optional()
    .transform((text, context) => {
      if (!text) return undefined;
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        context.addIssue({ code: 'custom', message: 'not JSON' });
        return z.NEVER;
      }
      const rules = z.array(criticalRuleSchema).min(1).safeParse(parsed);
      if (!rules.success) {
        context.addIssue({ code: 'custom', message: rules.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ') });
        return z.NEVER;
      }
      return rules.data as CriticalRule[];
    }),
  /** How long the hub waits for one answer of a member's FHIR server during a sync. */
  SYNC_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(30_000),
  MAX_RESOURCES_PER_REQUEST: z.coerce.number().int().min(1).max(1_000_000).default(5_000),
  /** How often buffered audit events are written. */
  AUDIT_FLUSH_MS: z.coerce.number().int().min(10).max(60_000).default(500),
});

export type Config = z.infer<typeof configSchema>;

export class ConfigError extends Error {}

/** Reads the environment once and validates it; an invalid value stops start-up with a message naming it. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const present = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ''));
  const parsed = configSchema.safeParse(present);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => `  ${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
  }
  const config = parsed.data;
  if (config.NODE_ENV === 'production') {
    if (config.TOKEN_SECRET === DEMO_TOKEN_SECRET) throw new ConfigError('Invalid configuration:\n  TOKEN_SECRET: the demo secret cannot be used with NODE_ENV=production');
    if (!config.AUTH_REQUIRED) throw new ConfigError('Invalid configuration:\n  AUTH_REQUIRED: cannot be false with NODE_ENV=production');
  }
  return config;
}
