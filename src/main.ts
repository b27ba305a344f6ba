/**
 * Start-up only: config -> database (MONGODB_URI, or the embedded FerretDB) -> demo seed on first start ->
 * hub. SIGTERM and SIGINT drain in-flight requests and stop everything in reverse order.
 */
import { join } from 'node:path';
import { startHub, type Hub } from './app.ts';
import { ConfigError, loadConfig } from './config.ts';
import { EmbeddedDatabaseError, EmbeddedFerretDb } from './database/embedded-ferretdb.ts';
import { seedDemoClients } from './demo/clients.ts';
import { seedDemoConsortium } from './demo/seed.ts';
import { createLogger } from './log.ts';

async function main(): Promise<void> {
  const startedAt = Date.now();
  const config = loadConfig();
  const log = createLogger(config.LOG_LEVEL);
  let embedded: EmbeddedFerretDb | undefined;
  let uri = config.MONGODB_URI;
  if (!uri) {
    embedded = new EmbeddedFerretDb({
      binary: config.FERRETDB_BIN,
      dataDir: join(config.DATA_DIR, 'ferretdb'),
      port: config.EMBEDDED_DB_PORT,
      log: (message) => log.info(message),
    });
    await embedded.start();
    startedDatabase = embedded;
    uri = embedded.uri;
    const database = embedded;
    const restart = (code: number | null): void => {
      log.error('embedded FerretDB stopped unexpectedly; restarting it', { code });
      setTimeout(() => {
        database.start().then(() => database.onUnexpectedExit(restart)).catch((error: unknown) => log.error('restart failed', { error: String(error) }));
      }, 1000);
    };
    database.onUnexpectedExit(restart);
    log.info('embedded FerretDB started', { uri, dataDir: join(config.DATA_DIR, 'ferretdb') });
  }

  const hub: Hub = await startHub(config, uri, log, async (store, clients) => {
    if (!embedded || !config.SEED_DEMO) return;
    const seeded = await seedDemoConsortium(store, { onlyIfEmpty: true });
    if (seeded) {
      log.info('demo consortium seeded on first start', seeded);
      log.info('demo API clients registered (secrets in the README)', { added: await seedDemoClients(clients) });
    }
  });
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
let startedDatabase: EmbeddedFerretDb | undefined;

main().catch(async (error: unknown) => {
  await startedDatabase?.stop().catch(() => undefined);
  if (error instanceof ConfigError || error instanceof EmbeddedDatabaseError) {
    process.stderr.write(`\n${error.message}\n\n`);
  } else {
    process.stderr.write(`\nThe hub could not start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n\n`);
  }
  process.exit(1);
});
