import { randomUUID } from 'node:crypto';
/** Composition of the hub: database -> store -> GraphQL -> HTTP. Used by main.ts and by the tests. */
import { RecognitionDecisions } from './recognition/decisions.ts';
import { ensureReapplyIndexes, ReapplyRunner } from './recognition/reapply-jobs.ts';
import { ensureIndexesEventually, HubSchedule } from './hub/schedule.ts';
import { SideCollections } from './fhir/side-collections.ts';
import type { StoreMaintenance } from './fhir/storage/maintenance.ts';
import { MemberSync } from './sync/member-sync.ts';
import { ReadingService } from './reading/reading-service.ts';
import { REFERRAL_FORM_QUERY, renderReferralForm } from './referral/form-page.ts';
import { ReferralLog } from './referral/referral-log.ts';
import { ReferralService } from './referral/referral-service.ts';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { ConfigError, type Config } from './config.ts';
import { activeDemoClients } from './demo/clients.ts';
import { openDatabase, type DatabaseConnection } from './database/connection.ts';
import { startupLimit } from './database/startup-wait.ts';
import { HubError, type ErrorCode } from './errors.ts';
import { ensureStructureDefinitions } from './fhir/definitions.ts';
import type { FhirStore } from './fhir/store.ts';
import { createHubStore, hubStoreOptions } from './hub-store.ts';
import type { RequestContext } from './request/context.ts';
import { fhirDirectivesPlugin } from './graphql/directives.ts';
import { createErrorFormatter } from './graphql/errors.ts';
import { buildHubSchema } from './graphql/schema.ts';
import { startHttpServer, type HttpServer } from './http/server.ts';
import { attachWebSocket } from './http/websocket.ts';
import { RequestPipeline } from './request/pipeline.ts';
import { PersonDirectory } from './identity/linking.ts';
import { AuditTrail } from './audit/audit-trail.ts';
import { Authenticator } from './auth/authenticator.ts';
import { ClientRegistry } from './auth/clients.ts';
import { RateLimiter } from './auth/rate-limit.ts';
import { TokenService } from './auth/tokens.ts';
import { ClientConcurrency } from './auth/concurrency.ts';
import { RefusalLog } from './audit/refusals.ts';
import { FhirLiteralRewriter } from './graphql/fhir-literals.ts';
import { fhirFieldResolver } from './graphql/list-navigation.ts';
import type { Logger } from './log.ts';

export interface Hub {
  url: string;
  store: FhirStore;
  maintenance: StoreMaintenance;
  database: DatabaseConnection;
  http: HttpServer;
  /** Settles when the start-up indexes exist (they are created in the background). */
  indexesReady: Promise<void>;
  /** Settles when the start-up pass over writes left half done has run. */
  recovered: Promise<void>;
  clients: ClientRegistry;
  auditTrail: AuditTrail;
  /** Drains in-flight requests (up to the grace period), then closes the database connection. */
  stop(): Promise<void>;
}

/**
 * Starts the hub. `beforeListening` runs with the store before the HTTP port opens (the embedded default
 * seeds the demo consortium there, so the playground answers with data from its first request).
 */
export async function startHub(
  config: Config,
  mongodbUri: string,
  log: Logger,
  beforeListening?: (store: FhirStore, clients: ClientRegistry, collections: SideCollections) => Promise<void>,
  /** FerretDB's PostgreSQL database (the embedded default, or FERRETDB_POSTGRESQL_URL): the hub's GIN indexes go there. */
  postgresUrl: string | undefined = config.FERRETDB_POSTGRESQL_URL,
): Promise<Hub> {
  // The CPU-heavy parts of start-up first (the definitions, the schema): on a busy machine they hold the event
  // loop for seconds, which would otherwise run out the timers of the database connection being made.
  ensureStructureDefinitions();
  const schema = buildHubSchema();
  const literals = new FhirLiteralRewriter(schema, config.MAX_QUERY_TOKENS);
  const readingOptions = { ...(config.CRITICAL_RULES ? { rules: config.CRITICAL_RULES } : {}), ackMinutes: config.CRITICAL_ACK_MINUTES };
  const database = openDatabase(mongodbUri, config.MONGODB_DB, config.DB_TIMEOUT_MS, config.DB_OPERATION_TIMEOUT_MS, postgresUrl ? { url: postgresUrl, warn: (message) => log.warn(message) } : undefined);
  try {
    await database.connect(startupLimit(config.STARTUP_TIMEOUT_MS, (message) => log.info(message)));
  } catch (error) {
    await database.close().catch(() => undefined);
    throw new ConfigError(`${error instanceof Error ? error.message : String(error)}: is ${config.MONGODB_URI ? 'MONGODB_URI' : 'the embedded database'} reachable?`);
  }
  const { store, maintenance } = createHubStore(database.db, hubStoreOptions(config, log));
  const collections = new SideCollections(database.db);
  const directory = new PersonDirectory(store, collections, config.NATIONAL_ID_SYSTEM);
  const referralLog = new ReferralLog(collections);
  const clients = new ClientRegistry(database.db);
  const auditTrail = new AuditTrail(store, log, config.AUDIT_FLUSH_MS);
  const refusals = new RefusalLog(database.db, auditTrail);
  const authenticator = new Authenticator(clients, new TokenService(config.TOKEN_SECRET, config.TOKEN_TTL_SECONDS, clients), directory, refusals, {
    perClient: config.LOGIN_FAILURES_PER_CLIENT,
    perSource: config.LOGIN_FAILURES_PER_SOURCE,
  });
  const rateLimiter = new RateLimiter(database.db, config.RATE_LIMIT_PER_MINUTE);
  const concurrency = new ClientConcurrency(config.MAX_CONCURRENT_REQUESTS_PER_CLIENT, config.CONCURRENCY_WAIT_MS);
  const instance = randomUUID();
  /** Where links the hub hands out point: PUBLIC_BASE_URL, else where this hub listens (never a request's Host). */
  let listeningUrl = '';
  const publicBaseUrl = (): string => config.PUBLIC_BASE_URL ?? listeningUrl;
  // The reading workflow as the hub runs it: its indexes and the escalation of critical values not acknowledged in time.
  const readings = new ReadingService(store, undefined, collections, { clientId: 'hub', anySide: true }, () => new Date(), readingOptions);
  const memberSync = new MemberSync(store, collections, { instance, secret: config.TOKEN_SECRET, requestTimeoutMs: config.SYNC_REQUEST_TIMEOUT_MS, policy: { httpHosts: config.SYNC_HTTP_HOSTS, allowedHosts: config.SYNC_ALLOWED_HOSTS } });
  const indexing = ensureIndexesEventually(log, () =>
    Promise.all([maintenance.ensureIndexes(), ensureReapplyIndexes(collections), memberSync.ensureIndexes(), readings.ensureIndexes(), directory.ensureIndexes(), rateLimiter.ensureIndexes(), refusals.ensureIndexes(), clients.ensureIndexes(), referralLog.ensureIndexes(), new RecognitionDecisions(store, collections, config.RECOGNITION_MARK).ensureIndexes()]),
  );
  const contextOptions = {
    store,
    collections,
    nationalIdSystem: config.NATIONAL_ID_SYSTEM,
    databaseReachable: database.ping,
    paging: { defaultCount: config.DEFAULT_COUNT, maxCount: config.LIST_MAX_RESULTS },
    requestTimeoutMs: config.REQUEST_TIMEOUT_MS,
    maxResourcesPerRequest: config.MAX_RESOURCES_PER_REQUEST,
    recognitionMark: config.RECOGNITION_MARK,
    memberSync,
    reading: readingOptions,
    maxTextLength: config.MAX_TEXT_LENGTH,
  };
  const pipeline = new RequestPipeline({ config, authenticator, rateLimiter, concurrency, refusals, auditTrail, contextOptions, literals, publicBaseUrl: () => publicBaseUrl(), log });

  const apollo = new ApolloServer<RequestContext>({
    schema,
    parseOptions: { maxTokens: config.MAX_QUERY_TOKENS },
    // Repeating FHIR elements take the HL7 list navigation arguments (name(use: official), fhirpath, _count).
    fieldResolver: fhirFieldResolver,
    introspection: config.INTROSPECTION_ENABLED,
    // Callers are to authenticate with bearer tokens, never cookies, so Apollo's CSRF guard (which blocks
    // plain GET queries) protects nothing here; the FHIR GraphQL conventions require GET to work.
    csrfPrevention: false,
    allowBatchedHttpRequests: false,
    formatError: createErrorFormatter(log),
    includeStacktraceInErrorResponses: false,
    // main.ts owns SIGTERM/SIGINT: it drains HTTP first, then stops Apollo and the database.
    stopOnTerminationSignals: false,
    validationRules: pipeline.validationRules,
    plugins: [ApolloServerPluginLandingPageDisabled(), ...pipeline.apolloPlugins(), fhirDirectivesPlugin<RequestContext>()],
  });
  await apollo.start();
  // The hub's own passes (hub/schedule.ts), every one safe beside other instances doing the same.
  const sweeper = new ReferralService(store, undefined, { clientId: 'hub', anySide: true }, () => new Date(), referralLog);
  const jobRunner = new ReapplyRunner(store, collections, { instance, markText: config.RECOGNITION_MARK });
  const schedule = new HubSchedule(
    log,
    [
      // Writes a killed process left half done (shared by instances: safe beside live writers).
      { name: 'recovery', done: 'finished writes left half done', run: async () => (await maintenance.recoverCutOffWrites()).intents },
      // Referrals accepted for a day that has passed without arrival become NO_SHOW (a compare-and-set each).
      { name: 'no-show sweep', done: 'referrals marked NO_SHOW', run: () => sweeper.markNoShows() },
      // Critical values not acknowledged in time are escalated (a compare-and-set each: once, whichever instance).
      { name: 'critical-value escalation', done: 'critical values not acknowledged in time escalated', level: 'warn', run: () => readings.escalate() },
    ],
    [
      // Background jobs (the re-apply of an edited code map, members' syncs): claimed through leases in the database.
      { name: 'background jobs', done: 'background jobs run', run: () => jobRunner.runDue() },
      { name: 'member sync', done: 'members synced', run: () => memberSync.runDue() },
    ],
    { maintenanceMs: config.MAINTENANCE_INTERVAL_MS, jobsMs: config.JOB_INTERVAL_MS },
  );
  // Checked before seeding, so an empty database is marked current and a seeded one is not taken for stale.
  if ((await maintenance.searchIndexStatus().catch(() => undefined)) === 'stale') {
    log.warn('the stored search values were extracted with other search parameters than this hub knows; run `npm run reindex` once');
  }
  // Writes left half done are finished before anything else writes; the sweeps and jobs begin once the seed (the
  // demo's year of referrals, which it runs through their workflow) has been written, or they would change its
  // referrals under it.
  let recovered = schedule.runMaintenance('recovery');
  if (beforeListening) {
    await recovered;
    await beforeListening(store, clients, collections);
    // What was just written (the demo seed) gets planner statistics before the first request.
    await database.refreshStatistics().catch((error: unknown) => log.warn('refreshing database statistics failed', { error: String(error) }));
  }
  recovered = recovered.then(() => schedule.runMaintenance());
  schedule.start();
  if (config.NODE_ENV === 'production') {
    const demo = await activeDemoClients(clients);
    if (demo.length > 0) {
      await schedule.stop();
      indexing.stop();
      await apollo.stop();
      await auditTrail.stop();
      await database.close();
      throw new ConfigError(`Refusing to start with NODE_ENV=production: demo clients accept their documented secrets (${demo.join(', ')}); revoke them with npm run clients -- revoke --id <id>`);
    }
  }

  const http = await startHttpServer({
    host: config.HOST,
    port: config.PORT,
    maxBodyBytes: config.MAX_BODY_BYTES,
    playgroundEnabled: config.PLAYGROUND_ENABLED,
    apollo,
    createContext: (credentials, source) => pipeline.admit(credentials, source),
    tokenEndpoint: (form, authorization, source) => authenticator.tokenRequest(form, authorization, source),
    // FHIR REST requests are audited like GraphQL ones: what they touched, who, the outcome.
    recordRest: (context, rest) => {
      if (!context.access) return;
      auditTrail.record({
        caller: context.access.caller,
        audit: context.access.audit,
        query: `${rest.method} ${rest.path}`,
        operationName: `FHIR REST ${rest.method} ${rest.path.split('?')[0]!.slice(0, 100)}`,
        outcome: rest.outcome,
        ...(rest.detail ? { detail: rest.detail } : {}),
      });
    },
    version: process.env.npm_package_version ?? '0.1.0',
    publicBaseUrl,
    referralForm: async (id, context) => {
      // Through the GraphQL API itself: the same access policy, loaders and audit as any query.
      const answer = await apollo.executeOperation({ query: REFERRAL_FORM_QUERY, variables: { id } }, { contextValue: context });
      const result = answer.body.kind === 'single' ? answer.body.singleResult : undefined;
      const error = result?.errors?.[0];
      if (error) throw new HubError((error.extensions?.code as ErrorCode | undefined) ?? 'INTERNAL', error.message);
      return renderReferralForm((result!.data as { referral: Parameters<typeof renderReferralForm>[0] }).referral, config.NATIONAL_ID_SYSTEM);
    },
    requestTimeoutMs: config.REQUEST_TIMEOUT_MS,
    prepareQuery: (query) => pipeline.prepare(query),
    databaseReachable: database.ping,
    databaseUnreachableSince: database.unreachableSince,
    log,
  });

  listeningUrl = http.url;

  const sockets = attachWebSocket({ server: http.server, schema, apollo, pipeline, requestTimeoutMs: config.REQUEST_TIMEOUT_MS, recheckMs: config.SOCKET_RECHECK_MS, log });

  return {
    url: http.url,
    store,
    maintenance,
    database,
    http,
    indexesReady: indexing.ready,
    clients,
    auditTrail,
    recovered,
    stop: async () => {
      await schedule.stop();
      indexing.stop();
      await sockets.close();
      await http.close(config.SHUTDOWN_GRACE_MS);
      log.debug('http server closed');
      await apollo.stop();
      log.debug('graphql server stopped');
      await auditTrail.stop();
      log.debug('audit events written', { pending: auditTrail.pending });
      await database.close();
      log.debug('database connection closed');
    },
  };
}
