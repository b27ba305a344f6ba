/**
 * The README's examples, run as written against a hub on the demo consortium: every GraphQL block (as the demo
 * administrator), every shell block that calls the hub with curl, and the end-to-end referral script with the two
 * members' own clients. Only the address changes (the test hub listens on a free port).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../../src/app.ts';
import { projectRoot } from '../../src/config.ts';
import { authenticatedDemoHub, token } from '../support/auth.ts';
import { graphql, type TestDatabase } from '../support/hub.ts';

const run = promisify(execFile);
const README_URL = 'http://127.0.0.1:4000';

/** The fenced blocks of a language in the README, in order. */
function blocks(language: string): string[] {
  const text = readFileSync(join(projectRoot, 'README.md'), 'utf8');
  return [...text.matchAll(new RegExp('```' + language + '\\n([\\s\\S]*?)```', 'g'))].map((match) => match[1]!);
}

/** Whether an answer's data holds at least one non-empty list or object anywhere. */
const holdsData = (value: unknown): boolean =>
  Array.isArray(value) ? value.length > 0 : value !== null && typeof value === 'object' ? Object.values(value).some(holdsData) : value !== null && value !== undefined;

let database: TestDatabase;
let hub: Hub;
let admin: string;
const scratch = mkdtempSync(join(tmpdir(), 'hub-readme-'));

beforeAll(async () => {
  ({ database, hub } = await authenticatedDemoHub('readme'));
  admin = await token(hub.url, 'consortium-admin');
});
afterAll(async () => {
  await hub?.stop();
  await database?.drop();
  rmSync(scratch, { recursive: true, force: true });
});

describe('the README', () => {
  it('has GraphQL examples that run and return data', async () => {
    const examples = blocks('graphql');
    expect(examples.length).toBeGreaterThanOrEqual(2);
    for (const query of examples) {
      const answer = await graphql(hub.url, query, undefined, admin);
      expect(answer.errors, query).toBeUndefined();
      expect(holdsData(answer.data), query).toBe(true);
    }
  });

  it('has shell examples that get a token and FHIR REST answers with data', async () => {
    const examples = blocks('sh').filter((block) => block.includes('curl'));
    expect(examples.length).toBeGreaterThanOrEqual(1);
    for (const script of examples) {
      const { stdout } = await run('bash', ['-euo', 'pipefail', '-c', script.replaceAll(README_URL, hub.url)], { cwd: scratch, maxBuffer: 16 * 1024 * 1024 });
      const bundles = stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line) as { resourceType: string; type: string; entry?: { resource: { resourceType: string } }[] });
      expect(bundles.length, script).toBeGreaterThan(0);
      for (const bundle of bundles) {
        expect(bundle).toMatchObject({ resourceType: 'Bundle', type: 'searchset' });
        expect(bundle.entry?.length ?? 0, script).toBeGreaterThan(0);
      }
      // The record number finds 王伟's record at the county hospital; the search finds his two glucose results.
      expect(bundles.map((bundle) => bundle.entry!.filter((entry) => entry.resource.resourceType !== 'OperationOutcome').length)).toEqual([1, 2]);
    }
  });

  it('has a referral script that runs a referral from submission to the closed loop with both members\' clients', async () => {
    const [script] = blocks('js');
    expect(script).toBeDefined();
    const file = join(scratch, 'referral.mjs');
    writeFileSync(file, script!);
    const { stdout } = await run(process.execPath, [file], { env: { ...process.env, HUB: hub.url }, cwd: scratch });
    const [trail, link] = stdout.trim().split('\n');
    expect(trail).toMatch(/^CLOSED SUBMITTED \(his-taolin-township\) → UNDER_REVIEW \(his-donghu-county\) → ACCEPTED \(his-donghu-county\) → ARRIVED \(his-donghu-county\) → COMPLETED \(his-donghu-county\) → CLOSED \(his-taolin-township\)$/);
    expect(link).toMatch(new RegExp(`^${hub.url}/referrals/[^/]+/form\\?link=`));
    const form = await fetch(link!);
    expect(form.status).toBe(200);
    expect(await form.text()).toContain('王伟');
  });
});
