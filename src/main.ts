/**
 * Start-up only: config -> database (MONGODB_URI, or the embedded FerretDB on PostgreSQL) -> demo seed on first start ->
 * hub. SIGTERM and SIGINT drain in-flight requests and stop everything in reverse order.
 */
import { startHub, type Hub } from './app.ts';
import { ConfigError, loadConfig } from './config.ts';
import { startEmbeddedDatabase, type EmbeddedDatabase } from './database/embedded-database.ts';
import { EmbeddedDatabaseError } from './database/embedded-ferretdb.ts';
import { seedDemoClients } from './demo/clients.ts';
import { seedDemoReadings } from './demo/readings.ts';
import { seedDemoDecisions, seedDemoRecognition } from './demo/recognition.ts';
import { seedDemoReferrals } from './demo/referrals.ts';
import { seedDemoConsortium } from './demo/seed.ts';
import { createLogger } from './log.ts';
import { closeValidationPool } from './fhir/validation-pool.ts';

async function main(): Promise<void> {
  const startedAt = Date.now();
  const config = loadConfig();
  const log = createLogger(config.LOG_LEVEL);
  let embedded: EmbeddedDatabase | undefined;
  let uri = config.MONGODB_URI;
  if (!uri) {
    embedded = await startEmbeddedDatabase({
      dataDir: config.DATA_DIR,
      ferretdbPort: config.EMBEDDED_DB_PORT,
      postgresPort: config.EMBEDDED_POSTGRES_PORT,
      ferretdbBinary: config.FERRETDB_BIN,
      backend: config.EMBEDDED_DB_BACKEND,
      startupTimeoutMs: config.STARTUP_TIMEOUT_MS,
      log: (message) => log.info(message),
      warn: (message) => log.warn(message),
    });
    startedDatabase = embedded;
    uri = embedded.uri;
    const database = embedded;
    const restart = (which: 'ferretdb' | 'postgres', code: number | null): void => {
      log.error(`embedded ${which === 'postgres' ? 'PostgreSQL' : 'FerretDB'} stopped unexpectedly; restarting it`, { code });
      setTimeout(() => {
        database.restart(which).catch((error: unknown) => log.error('restart failed', { error: String(error) }));
      }, 1000);
    };
    database.onUnexpectedExit(restart);
    log.info('embedded database started', { database: database.description });
  }

  const hub: Hub = await startHub(config, uri, log, async (store, clients, collections) => {
    if (!embedded || !config.SEED_DEMO) return;
    const seeded = await seedDemoConsortium(store, { onlyIfEmpty: true });
    if (seeded) {
      log.info('demo consortium seeded on first start', seeded);
      log.info('demo API clients registered (secrets in the README)', { added: await seedDemoClients(clients) });
      // A year of invented referrals and QC records has no place in a production database.
      if (config.NODE_ENV !== 'production') {
        log.info('demo referrals of a year run through the workflow', { referrals: await seedDemoReferrals(store, collections) });
        log.info('demo recognition catalog, QC records, code map and results', { resources: await seedDemoRecognition(store) });
        log.info('demo recognition decisions of a year', { decisions: await seedDemoDecisions(store, collections, new Date(), config.RECOGNITION_MARK) });
        log.info('demo remote readings of a year', { readings: await seedDemoReadings(store, collections) });
      }
    }
  }, embedded?.postgresUrl ?? config.FERRETDB_POSTGRESQL_URL);
  log.info('hub ready', { url: hub.url, startupMs: Date.now() - startedAt });
  process.stdout.write(`\nConsortium hub is ready.\n  Playground: ${hub.url}/graphql\n  Health:     ${hub.url}/health\n\n`);

  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info('shutting down: draining in-flight requests', { signal });
    hub
      .stop()
      .then(() => log.info('requests drained and database connection closed'))
      .then(() => closeValidationPool())
      .then(() => embedded?.stop())
      .then(() => {
        log.info('stopped cleanly');
        process.exit(0);
      })
      .catch((error: unknown) => {
        log.error('shutdown failed', { error: String(error) });
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

/** The embedded database started for this run: a start that fails stops it again (it is ours, not a leftover). */
let startedDatabase: EmbeddedDatabase | undefined;

main().catch(async (error: unknown) => {
  await startedDatabase?.stop().catch(() => undefined);
  if (error instanceof ConfigError || error instanceof EmbeddedDatabaseError) {
    process.stderr.write(`\n${error.message}\n\n`);
  } else {
    process.stderr.write(`\nThe hub could not start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n\n`);
  }
  process.exit(1);
});
