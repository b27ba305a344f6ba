/**
 * npm run clients -- <command>: manage the API clients of the hub (on MONGODB_URI or the embedded database).
 *
 *   register --id <id> --name <name> --kind member|admin|resident-app [--organization <Organization id>]
 *            --scopes "system/*.rs system/Observation.cruds" [--secret <at least 24 characters>]
 *   list
 *   revoke --id <id>
 *
 * register prints the secret once; only its scrypt hash is stored.
 */
import { parseArgs } from 'node:util';
import { ClientRegistry } from '../src/auth/clients.ts';
import { loadConfig } from '../src/config.ts';
import { openConfiguredDatabase } from '../src/database/configured-database.ts';
import { HubError } from '../src/errors.ts';

const [command, ...rest] = process.argv.slice(2);
const { values } = parseArgs({
  args: rest,
  options: { id: { type: 'string' }, name: { type: 'string' }, kind: { type: 'string' }, organization: { type: 'string' }, scopes: { type: 'string' }, secret: { type: 'string' } },
  strict: true,
});
if (!['register', 'list', 'revoke'].includes(command ?? '')) {
  console.error('usage: npm run clients -- register --id <id> --name <name> --kind member|admin|resident-app [--organization <id>] --scopes "<scopes>" [--secret <secret>]\n       npm run clients -- list\n       npm run clients -- revoke --id <id>');
  process.exit(2);
}
const config = loadConfig();
const { database, close } = await openConfiguredDatabase(config, (line) => console.error(line));
try {
  const registry = new ClientRegistry(database.db);
  if (command === 'register') {
    const { client, secret } = await registry.register({ id: values.id ?? '', name: values.name ?? values.id ?? '', kind: values.kind as never, organization: values.organization, scopes: values.scopes ?? '', secret: values.secret });
    console.log(JSON.stringify({ ...client, secret }, null, 2));
    console.error('The secret is shown only now; store it in the client system.');
  } else if (command === 'list') {
    for (const client of await registry.list()) {
      console.log(`${client._id.padEnd(28)} ${client.kind.padEnd(13)} ${(client.organization ?? '-').padEnd(34)} ${client.revoked ? 'REVOKED' : 'active '} ${client.scopes.join(' ')}`);
    }
  } else {
    await registry.revoke(values.id ?? '');
    console.log(`revoked ${values.id}; its tokens are refused from now on`);
  }
} catch (error) {
  if (!(error instanceof HubError)) throw error;
  console.error(`${error.code}: ${error.message}`);
  process.exitCode = 1;
} finally {
  await close();
}
