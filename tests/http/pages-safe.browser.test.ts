/**
 * Pages safe by construction, in Debian's Chromium: markup written into every name and text the pages show (a
 * member's own Organization name, a patient's name, a referral's reason and notes, a sync error) is shown as
 * text on the cockpit, the playground and the printable form, and nothing of it runs; every page is sent with a
 * strict Content-Security-Policy (no inline script), `nosniff` and `frame-ancestors 'none'`, and an injected
 * inline script is refused by the browser even if one slipped through.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../../src/app.ts';
import { authenticatedDemoHub, demoSecret, token } from '../support/auth.ts';
import { launchChromium, waitForPage } from '../support/browser.ts';
import { graphql, type TestDatabase } from '../support/hub.ts';

const MARKUP = `<img src=x onerror="window.__xss=(window.__xss||0)+1"><script>window.__xss=(window.__xss||0)+1</script>"><svg onload="window.__xss=1">`;

let database: TestDatabase;
let hub: Hub;
let browser: Browser;
let referralId: string;

beforeAll(async () => {
  // The member's server of the sync table is not reached by the test; it is allowed without a DNS lookup.
  ({ database, hub } = await authenticatedDemoHub('pages_safe', { SYNC_ALLOWED_HOSTS: 'his.donghu.example' }));
  const county = await token(hub.url, 'his-donghu-county');
  const township = await token(hub.url, 'his-taolin-township');
  const admin = await token(hub.url, 'consortium-admin');
  // A member sets its own name (as a hostile member could), a patient's name and a referral carry markup.
  const organization = (await graphql(hub.url, '{ Organization(id: "org-donghu-county") { json } }', undefined, county)).data!.Organization.json;
  expect((await graphql(hub.url, 'mutation($res: OrganizationInput!) { OrganizationUpdate(id: "org-donghu-county", res: $res) { id } }', { res: { ...organization, name: `东湖县人民医院${MARKUP}` } }, county)).errors).toBeUndefined();
  const patient = (await graphql(hub.url, '{ Patient(id: "pat-taolin-township-001") { json } }', undefined, township)).data!.Patient.json;
  expect((await graphql(hub.url, 'mutation($res: PatientInput!) { PatientUpdate(id: "pat-taolin-township-001", res: $res) { id } }', { res: { ...patient, name: [{ text: `王伟${MARKUP}` }] } }, township)).errors).toBeUndefined();
  const submitted = await graphql(hub.url, 'mutation($input: ReferralSubmitInput!) { referralSubmit(input: $input) { id } }', { input: { type: 'UP', patient: 'pat-taolin-township-001', to: 'org-donghu-county', reason: `胸闷${MARKUP}`, impression: MARKUP, allergies: MARKUP, consent: true } }, township);
  expect(submitted.errors).toBeUndefined();
  referralId = submitted.data!.referralSubmit.id;
  // The cockpit's sync table shows the member's name and its sync state.
  const registered = await graphql(hub.url, 'mutation { registerMemberEndpoint(organization: "org-donghu-county", baseUrl: "https://his.donghu.example/fhir", auth: NONE) { organization } }', undefined, admin);
  expect(registered.errors).toBeUndefined();
  browser = await launchChromium();
}, 120_000);
afterAll(async () => {
  await browser?.close();
  await hub?.stop();
  await database?.drop();
});

/** A page with every script error, CSP refusal and dialog collected. */
async function open(url: string): Promise<{ page: Page; problems: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`error: ${error.message}`));
  page.on('dialog', (dialog) => {
    problems.push(`dialog: ${dialog.message()}`);
    void dialog.dismiss();
  });
  page.on('console', (message) => {
    if (/Content Security Policy|Refused to/.test(message.text())) problems.push(`csp: ${message.text()}`);
  });
  const answer = await page.goto(url);
  const headers = answer!.headers();
  expect(headers['content-security-policy'], url).toMatch(/script-src 'self';/);
  expect(headers['content-security-policy'], url).toContain("frame-ancestors 'none'");
  expect(headers['content-security-policy'], url).not.toMatch(/script-src[^;]*unsafe-inline/);
  expect(headers['x-content-type-options'], url).toBe('nosniff');
  expect(headers['x-frame-options'], url).toBe('DENY');
  return { page, problems };
}

const executed = (page: Page): Promise<unknown> => page.evaluate('window.__xss');

describe('the pages', () => {
  it('show markup from the data as text on the cockpit, and run none of it', async () => {
    const { page, problems } = await open(`${hub.url}/cockpit`);
    await page.locator('#login-form').waitFor({ timeout: 30_000 });
    await page.fill('#client-id', 'consortium-admin');
    await page.fill('#client-secret', demoSecret('consortium-admin'));
    await page.press('#client-secret', 'Enter');
    await waitForPage(page, 'window.cockpitData !== undefined', 60_000);
    await waitForPage(page, "document.getElementById('sync').textContent.includes('东湖县人民医院')", 30_000);
    expect(await page.locator('#sync').innerText()).toContain('<img src=x onerror=');
    expect(await page.locator('#sync img, #sync script, #sync svg, #kpis img').count()).toBe(0);
    // The members' chart draws the name on a canvas; its tooltip shows it escaped.
    const box = await page.locator('#c-members').boundingBox();
    await page.mouse.move(box!.x + box!.width / 2, box!.y + box!.height / 2);
    await page.waitForTimeout(300);
    expect(await executed(page)).toBeUndefined();
    expect(problems).toEqual([]);
    await page.close();
  });

  it('show markup from the data as text on the printable form, opened from its link, and run none of it', async () => {
    const sender = await token(hub.url, 'his-taolin-township');
    const { url } = (await graphql(hub.url, `{ referralFormLink(id: "${referralId}") { url } }`, undefined, sender)).data!.referralFormLink;
    const { page, problems } = await open(url);
    expect(await page.locator('.patient-name').innerText()).toBe(`王伟${MARKUP}`);
    expect(await page.locator('body').innerText()).toContain('onerror=');
    expect(await page.locator('.sheet img, .sheet script, .sheet svg').count()).toBe(0);
    expect(await executed(page)).toBeUndefined();
    expect(problems).toEqual([]);
    await page.close();
  });

  it('show markup from the data as text in the playground, and run none of it', async () => {
    const { page, problems } = await open(`${hub.url}/graphql`);
    await page.locator('#token-input').fill(await token(hub.url, 'consortium-admin'));
    await page.click('#token-apply');
    await waitForPage(page, "document.getElementById('token-state').className === 'ok'", 30_000);
    await page.locator('.graphiql-query-editor .CodeMirror').waitFor({ timeout: 30_000 });
    await page.evaluate(`document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.setValue(${JSON.stringify('query Markup { Organization(id: "org-donghu-county") { name } Patient(id: "pat-taolin-township-001") { name { text } } }')})`);
    // GraphiQL picks the operation to run from the editor's text after a debounce.
    await page.waitForTimeout(500);
    await page.click('.graphiql-execute-button');
    await waitForPage(page, "document.querySelector('.graphiql-response .CodeMirror').CodeMirror.getValue().includes('onerror')", 30_000);
    expect(await executed(page)).toBeUndefined();
    expect(problems).toEqual([]);
    await page.close();
  });

  it('refuse an inline script that slipped into a page, by their policy', async () => {
    const { page, problems } = await open(`${hub.url}/cockpit`);
    // Markup written into the page as HTML (what innerHTML with data would do): the browser refuses to run it.
    await page.evaluate(`document.body.insertAdjacentHTML('beforeend', ${JSON.stringify(MARKUP)})`);
    await page.evaluate(`(() => { const s = document.createElement('script'); s.textContent = 'window.__xss = 1'; document.body.append(s); })()`);
    await page.waitForTimeout(300);
    expect(await executed(page)).toBeUndefined();
    expect(problems.some((problem) => problem.startsWith('csp:'))).toBe(true);
    await page.close();
  });

  it('send nosniff with every answer, the API and the assets too', async () => {
    for (const path of ['/health', '/graphql?query={__typename}', '/fhir/metadata', '/cockpit/assets/cockpit.js', '/playground/assets/playground.js']) {
      const answer = await fetch(`${hub.url}${path}`);
      expect(answer.headers.get('x-content-type-options'), path).toBe('nosniff');
    }
  });
});
