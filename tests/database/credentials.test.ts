/**
 * The embedded database requires credentials: FerretDB is given its PostgreSQL URL without the password, so an
 * anonymous client of its port reads and writes nothing (it used to read every collection, past the access policy
 * and the audit trail); the hub connects with the password generated at the first start, kept in the data folder
 * readable by its owner only.
 */
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MongoClient } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedDatabase, type EmbeddedDatabase } from '../../src/database/embedded-database.ts';
import { freePort } from '../support/ports.ts';

let embedded: EmbeddedDatabase;
let dataDir: string;
let port: number;
beforeAll(async () => {
  dataDir = join(mkdtempSync(join(tmpdir(), 'hub-credentials-')), 'data');
  port = await freePort();
  embedded = await startEmbeddedDatabase({ dataDir, ferretdbPort: port, postgresPort: await freePort(), backend: 'postgresql' });
}, 120_000);
afterAll(async () => embedded?.remove());

const attempt = async (uri: string): Promise<string> => {
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 5000 });
  try {
    await client.db('consortium_hub').collection('Patient').insertOne({ _id: 'probe' as never, name: '探测' });
    return `read ${(await client.db('consortium_hub').collection('Patient').find({}).toArray()).length}`;
  } catch (error) {
    return `refused: ${(error as Error).message.slice(0, 120)}`;
  } finally {
    await client.close();
  }
};

describe('the embedded FerretDB on PostgreSQL', () => {
  it('refuses an anonymous client and serves the hub with its generated password', async () => {
    expect(await attempt(`mongodb://127.0.0.1:${port}/`)).toMatch(/^refused/);
    expect(await attempt(`mongodb://postgres:wrong-password@127.0.0.1:${port}/?authMechanism=PLAIN`)).toMatch(/^refused/);
    expect(embedded.uri).toContain('authMechanism=PLAIN');
    expect(await attempt(embedded.uri)).toBe('read 1');
    // The password stays with the data folder's owner.
    expect(statSync(join(dataDir, 'postgres', 'password')).mode & 0o077).toBe(0);
  });
});
