import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { launchChromium, waitForPage } from '../support/browser.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../../src/app.ts';
import { ClientRegistry } from '../../src/auth/clients.ts';
import { seedDemoClients } from '../../src/demo/clients.ts';
import { demoHub, startTestHub, type TestDatabase } from '../support/hub.ts';

let database: TestDatabase;
let hub: Hub;
let browser: Browser;

beforeAll(async () => {
  ({ database, hub } = await demoHub('playground'));
  // Playwright gives the browser a fresh, empty profile of its own.
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await hub?.stop();
  await database?.drop();
});

/** The whole response text (CodeMirror renders only the lines in view, so innerText may miss some). */
const responseText = (page: import('playwright-core').Page): Promise<string> =>
  page.evaluate("document.querySelector('.graphiql-response .CodeMirror').CodeMirror.getValue()") as Promise<string>;

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
    await waitForPage(page, "document.querySelector('.graphiql-response')?.textContent?.includes('pat-donghu-county-001')", 30_000);
    const text = await responseText(page);
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
      await waitForPage(page, "document.querySelector('.graphiql-response')?.textContent?.includes('UNAUTHENTICATED')", 30_000);
      expect(await responseText(page)).toContain('/oauth/token');

      await page.getByRole('button', { name: 'Headers' }).click();
      // The headers editor is a CodeMirror 5 instance; setting its value is what typing into it does.
      const header = JSON.stringify({ Authorization: `Bearer ${accessToken}` });
      await page.evaluate(`document.querySelector('.graphiql-editor-tool .graphiql-editor:not(.hidden) > .CodeMirror').CodeMirror.setValue(${JSON.stringify(header)})`);
      await run.click();
      await waitForPage(page, "document.querySelector('.graphiql-response')?.textContent?.includes('pat-donghu-county-001')", 30_000);
      expect(await responseText(page)).toContain('王伟');
    } finally {
      await secured.stop();
    }
  });

  it('loads the schema for Docs and autocomplete once a token is entered in the token field, for every tab', async () => {
    const secured = await startTestHub(database.name, { AUTH_REQUIRED: 'true' });
    await seedDemoClients(new ClientRegistry(database.connection.db));
    try {
      const page = await browser.newPage();
      const pageErrors: string[] = [];
      page.on('pageerror', (error) => pageErrors.push(error.message));
      await page.goto(`${secured.url}/graphql`);
      await page.locator('.graphiql-execute-button').waitFor({ timeout: 30_000 });
      // Without a token the schema request answers 401, and the page says how to get a token.
      const notice = page.locator('#auth-notice');
      await notice.waitFor({ state: 'visible', timeout: 30_000 });
      expect(await notice.innerText()).toContain(`${secured.url}/oauth/token`);
      expect(await notice.innerText()).toContain('访问令牌');

      // Get a token in the page with the demo administrator's client id and secret (the README's demo values).
      await page.locator('#token-fetch summary').click();
      await page.locator('#client-id').fill('consortium-admin');
      await page.locator('#client-secret').fill('demo-secret-consortium-admin');
      await page.locator('#token-request').click();
      await waitForPage(page, "document.getElementById('token-state').className === 'ok'", 30_000);
      await notice.waitFor({ state: 'hidden', timeout: 30_000 });

      // The Docs panel lists the Query fields: the introspection query (13 levels deep) is not refused.
      await page.getByRole('button', { name: 'Show Documentation Explorer' }).click();
      const docs = page.locator('.graphiql-doc-explorer');
      await docs.getByText('Query', { exact: true }).click();
      await docs.getByText('ObservationList', { exact: true }).first().waitFor({ timeout: 30_000 });
      expect(await docs.innerText()).toContain('patientHistory');

      // A new tab: autocomplete offers ObservationList, and the query runs with the same token.
      const tabs = await page.locator('.graphiql-tab').count();
      await page.getByRole('button', { name: 'Add tab' }).click();
      await expect.poll(() => page.locator('.graphiql-tab').count()).toBe(tabs + 1);
      const editor = page.locator('.graphiql-query-editor .CodeMirror').first();
      await page.evaluate("document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.setValue('')");
      await editor.click();
      await page.keyboard.type('{ ObservationLi');
      const hints = page.locator('.CodeMirror-hints');
      await hints.waitFor({ timeout: 30_000 });
      expect(await hints.innerText()).toContain('ObservationList');
      await page.keyboard.press('Escape');
      await page.evaluate(`document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.setValue(${JSON.stringify('query SecondTab { Patient(id: "pat-taolin-township-001") { name { text } } }')})`);
      // GraphiQL picks the operation to run from the editor's text after a debounce; give it that moment.
      await page.waitForTimeout(500);
      await page.locator('.graphiql-execute-button').click();
      await expect.poll(() => responseText(page), { timeout: 30_000 }).toContain('王伟');
      expect(pageErrors).toEqual([]);
      await page.screenshot({ path: join(tmpdir(), 'hub-playground-docs.png') });
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
