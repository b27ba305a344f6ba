/**
 * npm run sync -- --member <organisation id> | --all: pulls what changed on members' FHIR servers into the
 * database of MONGODB_URI (or the embedded FerretDB), now, with a progress line per member and type. Members are
 * registered with the GraphQL mutation registerMemberEndpoint (administrators); a running hub also syncs them on
 * their schedule. Exit code 1 when a member could not be synced.
 */
import { randomUUID } from 'node:crypto';
import { loadConfig } from '../src/config.ts';
import { openConfiguredDatabase } from '../src/database/configured-database.ts';
import { createHubStore, hubStoreOptions } from '../src/hub-store.ts';
import { SideCollections } from '../src/fhir/side-collections.ts';
import { MemberSync } from '../src/sync/member-sync.ts';

const args = process.argv.slice(2);
const memberIndex = args.indexOf('--member');
const member = memberIndex >= 0 ? args[memberIndex + 1] : undefined;
if (!member && !args.includes('--all')) {
  console.error('usage: npm run sync -- --member <organisation id>   or   npm run sync -- --all');
  process.exit(2);
}
const config = loadConfig();
const { database, close } = await openConfiguredDatabase(config, console.log);
let exitCode = 0;
try {
  const { store, maintenance } = createHubStore(database.db, hubStoreOptions(config));
  await maintenance.ensureIndexes();
  const sync = new MemberSync(store, new SideCollections(database.db), {
    instance: `cli-${randomUUID()}`,
    secret: config.TOKEN_SECRET,
    requestTimeoutMs: config.SYNC_REQUEST_TIMEOUT_MS,
    policy: { httpHosts: config.SYNC_HTTP_HOSTS, allowedHosts: config.SYNC_ALLOWED_HOSTS },
    onProgress: (progress) => {
      const line = `${progress.organization} ${progress.type.padEnd(18)} pages ${String(progress.pages).padStart(4)}  written ${String(progress.written).padStart(6)}  invalid ${progress.invalid}`;
      if (process.stderr.isTTY) process.stderr.write(`\r${line}   `);
      else console.log(line);
    },
  });
  await sync.ensureIndexes();
  const members = member ? [member] : (await sync.status()).filter((item) => item.enabled).map((item) => item.organization);
  for (const organization of members) {
    const started = Date.now();
    try {
      const counts = await sync.sync(organization);
      if (process.stderr.isTTY) process.stderr.write('\n');
      if (counts === null) console.log(`${organization}: another hub instance is syncing it now`);
      else console.log(`${organization}: written ${counts.written}, deleted ${counts.deleted}, invalid ${counts.invalid} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    } catch (error) {
      if (process.stderr.isTTY) process.stderr.write('\n');
      console.log(`${organization}: FAILED ${error instanceof Error ? error.message : String(error)}`);
      exitCode = 1;
    }
  }
} finally {
  await close();
}
process.exit(exitCode);
