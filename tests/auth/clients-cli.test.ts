/**
 * The administrator's client CLI (`npm run clients -- ...`) against the real database, and the refusal of
 * demo secrets in production.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClientRegistry } from '../../src/auth/clients.ts';
import { ConfigError, loadConfig, projectRoot } from '../../src/config.ts';
import { seedDemoClients } from '../../src/demo/clients.ts';
import { startHub } from '../../src/app.ts';
import { createLogger } from '../../src/log.ts';
import { freshDatabase, mongodbUri, testConfig, type TestDatabase } from '../support/hub.ts';

const run = promisify(execFile);
let database: TestDatabase;
beforeAll(async () => {
  database = await freshDatabase('clients_cli');
});
afterAll(async () => database.drop());

const cli = (...args: string[]) =>
  run(process.execPath, ['--import', 'tsx', join(projectRoot, 'scripts', 'clients.ts'), ...args], {
    cwd: projectRoot,
    env: { ...process.env, MONGODB_URI: mongodbUri(), MONGODB_DB: database.name },
  });

describe('npm run clients', () => {
  it('registers a client with its secret shown once and stored only as a hash, lists and revokes it', async () => {
    const registered = await cli('register', '--id', 'his-test', '--name', '测试医院 HIS', '--kind', 'member', '--organization', 'org-test', '--scopes', 'system/Observation.rs system/Patient.cruds');
    const shown = JSON.parse(registered.stdout) as { _id: string; secret: string; scopes: string[]; organization: string };
    expect(shown).toMatchObject({ _id: 'his-test', organization: 'Organization/org-test', scopes: ['system/Observation.rs', 'system/Patient.cruds'] });
    expect(shown.secret.length).toBeGreaterThanOrEqual(24);
    const stored = await database.connection.db.collection('clients').findOne({ _id: 'his-test' as never });
    expect(JSON.stringify(stored)).not.toContain(shown.secret);
    expect(stored!.secretHash).toMatch(/^scrypt\$32768\$/);
    const registry = new ClientRegistry(database.connection.db);
    await expect(registry.authenticate('his-test', shown.secret)).resolves.toMatchObject({ _id: 'his-test', name: '测试医院 HIS' });
    await expect(registry.authenticate('his-test', `${shown.secret}x`)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });

    expect((await cli('list')).stdout).toMatch(/his-test\s+member\s+Organization\/org-test\s+active/);
    await cli('revoke', '--id', 'his-test');
    expect((await cli('list')).stdout).toMatch(/his-test.*REVOKED/);
    await expect(registry.authenticate('his-test', shown.secret)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });

    const bad = await cli('register', '--id', 'x', '--kind', 'member', '--scopes', 'system/Foo.rs').catch((error: { code: number; stderr: string }) => error);
    expect((bad as { code: number }).code).toBe(1);
    expect((bad as { stderr: string }).stderr).toMatch(/BAD_USER_INPUT/);
  });
});

describe('production', () => {
  it('refuses the demo token secret, AUTH_REQUIRED=false, and active demo clients', async () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(ConfigError);
    expect(() => loadConfig({ NODE_ENV: 'production', TOKEN_SECRET: 'a-real-secret-of-more-than-32-characters', AUTH_REQUIRED: 'false' })).toThrow(/AUTH_REQUIRED/);
    await seedDemoClients(new ClientRegistry(database.connection.db));
    const config = testConfig({ MONGODB_DB: database.name, NODE_ENV: 'production', TOKEN_SECRET: 'a-real-secret-of-more-than-32-characters', AUTH_REQUIRED: 'true' });
    await expect(startHub(config, mongodbUri(), createLogger('silent'))).rejects.toThrow(/demo clients accept their documented secrets/);
  });
});
