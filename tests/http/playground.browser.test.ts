import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../../src/app.ts';
import { ClientRegistry } from '../../src/auth/clients.ts';
import { seedDemoClients } from '../../src/demo/clients.ts';
import { demoHub, startTestHub, type TestDatabase } from '../support/hub.ts';

const chromiumPath = '/usr/bin/chromium';
let database: TestDatabase;
let hub: Hub;
let browser: Browser;

beforeAll(async () => {
  if (!existsSync(chromiumPath)) throw new Error(`${chromiumPath} is missing: apt-get install chromium (.ci/run does this)`);
  ({ database, hub } = await demoHub('playground'));
  // Playwright gives the browser a fresh, empty profile of its own.
  browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
});
afterAll(async () => {
  await browser?.close();
  await hub?.stop();
  await database?.drop();
});

describe('the playground', () => {
  it('serves GraphiQL from the hub alone, preloaded with an example that runs on the demo data', async () => {
    const page = await browser.newPage();
    const requested: string[] = [];
    page.on('request', (request) => requested.push(request.url()));
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));

    await page.goto(`${hub.url}/graphql`);
    const run = page.locator('.graphiql-execute-button');
    await run.waitFor({ timeout: 30_000 });
    await expect(page.locator('.graphiql-query-editor').innerText()).resolves.toContain('PatientList(identifier: "urn:oid:2.16.156.10011.1.3|43062120021114011X")');
    await run.click();
    const response = page.locator('.graphiql-response');
    await page.waitForFunction("document.querySelector('.graphiql-response')?.textContent?.includes('pat-donghu-county-001')", undefined, { timeout: 30_000 });
    const text = await response.innerText();
    expect(text).toContain('王伟');
    expect(text).toContain('东湖县人民医院');

    // Every asset and call went to the hub itself: nothing from a CDN.
    expect(requested.length).toBeGreaterThan(3);
    expect(requested.filter((url) => !url.startsWith(hub.url))).toEqual([]);
    expect(pageErrors).toEqual([]);
    await page.screenshot({ path: join(tmpdir(), 'hub-playground.png') });
  });

  it('runs with a demo token pasted into the Headers tab, as the README says, and explains a missing one', async () => {
    const secured = await startTestHub(database.name, { AUTH_REQUIRED: 'true' });
    await seedDemoClients(new ClientRegistry(database.connection.db));
    try {
      const tokenAnswer = await fetch(`${secured.url}/oauth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from('consortium-admin:demo-secret-consortium-admin').toString('base64')}` },
        body: 'grant_type=client_credentials',
      });
      const { access_token: accessToken } = (await tokenAnswer.json()) as { access_token: string };
      const page = await browser.newPage();
      await page.goto(`${secured.url}/graphql`);
      const run = page.locator('.graphiql-execute-button');
      await run.waitFor({ timeout: 30_000 });
      await run.click();
      await page.waitForFunction("document.querySelector('.graphiql-response')?.textContent?.includes('UNAUTHENTICATED')", undefined, { timeout: 30_000 });
      expect(await page.locator('.graphiql-response').innerText()).toContain('/oauth/token');

      await page.getByRole('button', { name: 'Headers' }).click();
      // The headers editor is a CodeMirror 5 instance; setting its value is what typing into it does.
      const header = JSON.stringify({ Authorization: `Bearer ${accessToken}` });
      await page.evaluate(`document.querySelector('.graphiql-editor-tool .graphiql-editor:not(.hidden) > .CodeMirror').CodeMirror.setValue(${JSON.stringify(header)})`);
      await run.click();
      await page.waitForFunction("document.querySelector('.graphiql-response')?.textContent?.includes('pat-donghu-county-001')", undefined, { timeout: 30_000 });
      expect(await page.locator('.graphiql-response').innerText()).toContain('王伟');
    } finally {
      await secured.stop();
    }
  });

  it('is not served when switched off', async () => {
    const closed = await startTestHub(database.name, { PLAYGROUND_ENABLED: 'false' });
    try {
      const response = await fetch(`${closed.url}/graphql`, { headers: { accept: 'text/html' } });
      expect(response.status).toBe(404);
      expect((await fetch(`${closed.url}/playground/assets/graphiql.min.js`)).status).toBe(404);
    } finally {
      await closed.stop();
    }
  });
});
