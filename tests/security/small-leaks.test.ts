/**
 * Issue 10, item 8: smaller leaks and errors seen from outside.
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../../src/app.ts';
import { projectRoot } from '../../src/config.ts';
import { authenticatedDemoHub, token } from '../support/auth.ts';
import { freePort } from '../support/ports.ts';
import { graphql, startTestHub, type TestDatabase } from '../support/hub.ts';

let database: TestDatabase;
let hub: Hub;
let resident: string;
let admin: string;
beforeAll(async () => {
  ({ database, hub } = await authenticatedDemoHub('leaks'));
  resident = await token(hub.url, 'county-health-app', { patient_identifier: '43062120021114011X' });
  admin = await token(hub.url, 'consortium-admin');
});
afterAll(async () => {
  await hub.stop();
  await database.drop();
});

const post = (body: string, contentType: string, accessToken = admin) =>
  fetch(`${hub.url}/graphql`, { method: 'POST', headers: { 'content-type': contentType, authorization: `Bearer ${accessToken}` }, body });

describe('item 8: smaller leaks and errors', () => {
  it('answers a resident’s update of another person’s resource exactly as one of a resource that does not exist', async () => {
    const update = (id: string) => graphql(hub.url, `mutation { ObservationUpdate(id: "${id}", res: { status: "final", code: { text: "x" } }) { id } }`, undefined, resident);
    const someoneElses = await update('obs-00500');
    const nobodys = await update('obs-does-not-exist');
    expect(someoneElses.errors?.[0]?.extensions?.code).toBe(nobodys.errors?.[0]?.extensions?.code);
    expect(someoneElses.errors?.[0]?.message).toBe(nobodys.errors?.[0]?.message);
    expect(JSON.stringify(someoneElses)).not.toMatch(/version/);
    const remove = (id: string) => graphql(hub.url, `mutation { ObservationDelete(id: "${id}") { id } }`, undefined, resident);
    expect((await remove('obs-00500')).errors?.[0]?.message).toBe((await remove('obs-does-not-exist')).errors?.[0]?.message);
  });

  it('gives no field suggestions when introspection is off', async () => {
    const closed = await startTestHub(database.name, { AUTH_REQUIRED: 'true', INTROSPECTION_ENABLED: 'false' });
    try {
      const answer = await graphql(closed.url, '{ Patient(id: "pat-taolin-township-001") { nam } }', undefined, await token(closed.url, 'consortium-admin'));
      expect(answer.errors?.[0]?.message).toMatch(/nam/);
      expect(JSON.stringify(answer)).not.toMatch(/Did you mean/);
    } finally {
      await closed.stop();
    }
    const open = await graphql(hub.url, '{ Patient(id: "pat-taolin-township-001") { nam } }', undefined, admin);
    expect(open.errors?.[0]?.message).toMatch(/Did you mean "name"/);
  });

  it('answers BAD_USER_INPUT, never INTERNAL, to a Bundle with a null entry and to JSON nested 5,000 deep', async () => {
    const nullEntry = await graphql(hub.url, 'mutation($b: JSON!) { importBundle(bundle: $b) { summary { created } } }', { b: { resourceType: 'Bundle', type: 'transaction', entry: [null] } }, admin);
    expect(nullEntry.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(nullEntry.errors?.[0]?.message).toMatch(/entry\[0\]/);
    // Written as text: JSON.stringify itself would overflow the stack on it.
    const deep = `{"resourceType":"Patient","extension":[${'{"url":"http://x","extension":['.repeat(5000)}${']}'.repeat(5000)}]}`;
    for (const variables of [`{"b":{"resourceType":"Bundle","type":"batch","entry":[{"resource":${deep}}]}}`, `{"r":${deep}}`]) {
      const response = await post(`{"query":"mutation($b: JSON, $r: PatientInput) { importBundle(bundle: $b) { summary { created } } }","variables":${variables}}`, 'application/json');
      const body = (await response.json()) as { errors: { extensions: { code: string } }[] };
      expect(response.status).toBe(400);
      expect(body.errors[0]!.extensions.code).toBe('BAD_USER_INPUT');
    }
    expect((await fetch(`${hub.url}/health`)).status).toBe(200);
  });

  it('takes only JSON media types as JSON', async () => {
    const query = JSON.stringify({ query: '{ hubStatus { name } }' });
    expect((await post(query, 'text/plain; charset=application/json')).status).toBe(415);
    expect((await post(query, 'text/plain')).status).toBe(415);
    expect((await post(query, 'application/jsonx')).status).toBe(415);
    expect((await post(query, 'application/json; charset=utf-8')).status).toBe(200);
    expect((await post(query, 'application/graphql-response+json')).status).toBe(200);
    expect((await post('{ hubStatus { name } }', 'application/graphql')).status).toBe(200);
  });

  it('stops its embedded FerretDB when a production start is refused', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'hub-production-'));
    chmodSync(dataDir, 0o755); // the embedded PostgreSQL runs as its own user
    try {
      const child = spawn(process.execPath, ['--import', 'tsx', join(projectRoot, 'src', 'main.ts')], {
        cwd: projectRoot,
        env: { ...process.env, MONGODB_URI: '', NODE_ENV: 'production', TOKEN_SECRET: 'a-real-secret-of-more-than-32-characters', DATA_DIR: dataDir, EMBEDDED_DB_PORT: String(await freePort()), EMBEDDED_POSTGRES_PORT: String(await freePort()), PORT: String(await freePort()) },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
      expect(await new Promise((resolve) => child.once('exit', resolve))).toBe(1);
      expect(output, output.slice(-1500)).toMatch(/demo clients accept their documented secrets/);
      const pidFile = join(dataDir, 'ferretdb', 'ferretdb.pid');
      expect(existsSync(pidFile)).toBe(true);
      const pid = Number(readFileSync(pidFile, 'utf8'));
      expect(existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ')).toBe(false);
      // PostgreSQL, under FerretDB, is stopped too (a clean shutdown removes its postmaster.pid).
      expect(existsSync(join(dataDir, 'postgres', 'cluster', 'postmaster.pid'))).toBe(false);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
