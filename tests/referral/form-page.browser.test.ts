/**
 * The printable referral form in Debian's Chromium: opened from a browser link that `referralFormLink` gives (no
 * header), or with the bearer token; in Chinese, A4, with the patient's name, the member's record number (病案号),
 * both institutions and the attached results by name, value and date (checked on the page and in a screenshot of
 * the printed area, with a CJK font really used).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { launchChromium } from '../support/browser.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../../src/app.ts';
import { projectRoot } from '../../src/config.ts';
import type { ClientRegistry } from '../../src/auth/clients.ts';
import { authenticatedDemoHub, token } from '../support/auth.ts';
import { graphql, type TestDatabase } from '../support/hub.ts';

let database: TestDatabase;
let hub: Hub;
let browser: Browser;
let referralId: string;
let sender: string;
let registry: ClientRegistry;

beforeAll(async () => {
  ({ database, hub, registry } = await authenticatedDemoHub('referral_form'));
  sender = await token(hub.url, 'his-taolin-township');
  const submitted = await graphql(
    hub.url,
    'mutation($input: ReferralSubmitInput!) { referralSubmit(input: $input) { id } }',
    { input: { type: 'UP', patient: 'pat-taolin-township-001', to: 'org-donghu-county', reason: '2型糖尿病血糖控制不佳，需上级医院调整治疗方案', impression: '2型糖尿病', allergies: '青霉素', consent: true, attachments: ['DiagnosticReport/rep-0001', 'Observation/obs-00001'] } },
    sender,
  );
  expect(submitted.errors).toBeUndefined();
  referralId = submitted.data!.referralSubmit.id;
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await hub?.stop();
  await database?.drop();
});

describe('the printable referral form', () => {
  it('opens from a link in a browser and renders the 双向转诊单 in Chinese with the patient, its record number, both institutions and the results, offline', async () => {
    const link = await graphql(hub.url, `{ referralFormLink(id: "${referralId}") { url expiresAt } }`, undefined, sender);
    expect(link.errors).toBeUndefined();
    const { url, expiresAt } = link.data!.referralFormLink;
    expect(url.startsWith(`${hub.url}/referrals/${referralId}/form?link=`)).toBe(true);
    expect(new Date(expiresAt).getTime() - Date.now()).toBeGreaterThan(9 * 60_000);
    const page = await browser.newPage({ viewport: { width: 794, height: 1123 } }); // A4 at 96 dpi
    const requested: string[] = [];
    page.on('request', (request) => requested.push(request.url()));
    const answer = await page.goto(url);
    expect(answer?.status()).toBe(200);
    expect(await page.title()).toContain('双向转诊（转出）单');
    expect(await page.locator('html').getAttribute('lang')).toBe('zh-CN');
    expect(await page.locator('.patient-name').innerText()).toBe('王伟');
    expect(await page.locator('.recipient').innerText()).toBe('东湖县人民医院');
    expect(await page.locator('.sender').innerText()).toContain('东湖县桃林镇卫生院');
    const text = await page.locator('body').innerText();
    for (const expected of ['存根', '2型糖尿病血糖控制不佳', '青霉素', 'TL100037']) expect(text).toContain(expected);
    // The hub's own id is not a record number; the results show by name, value and date, not as references.
    expect(text).not.toContain('pat-taolin-township-001');
    expect(text).not.toContain('DiagnosticReport/rep-0001');
    expect(await page.locator('.result').allInnerTexts()).toEqual(['生化基础组合 2026-07-12', '葡萄糖 11.2 mmol/L 2026-07-12']);
    // Nothing from elsewhere: the one request is the page itself.
    expect(requested.every((url) => url.startsWith(hub.url))).toBe(true);
    // The Chinese is drawn with a CJK font, not as empty boxes; the screenshot of the printed area shows it.
    expect(await page.evaluate(`document.fonts.check('16px "Noto Sans CJK SC"', '王伟')`)).toBe(true);
    const nameBox = await page.locator('.patient-name').boundingBox();
    expect(nameBox!.width).toBeGreaterThan(16); // two CJK characters, not collapsed
    const shot = await page.screenshot({ fullPage: true });
    const name = await page.locator('.patient-name').screenshot();
    expect(shot.subarray(1, 4).toString()).toBe('PNG');
    // The name's pixels are not blank: a dark glyph on white.
    const dark = (await page.evaluate(`(async () => {
      const image = new Image();
      image.src = 'data:image/png;base64,${name.toString('base64')}';
      await image.decode();
      const canvas = document.createElement('canvas');
      canvas.width = image.width;
      canvas.height = image.height;
      const context = canvas.getContext('2d');
      context.drawImage(image, 0, 0);
      const { data } = context.getImageData(0, 0, image.width, image.height);
      let count = 0;
      for (let i = 0; i < data.length; i += 4) if (data[i] < 100 && data[i + 1] < 100 && data[i + 2] < 100) count++;
      return count;
    })()`)) as number;
    expect(dark).toBeGreaterThan(30);
    const out = join(projectRoot, '.test-data', 'screenshots');
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, 'referral-form.png'), shot);
    // The print layout is A4.
    const pdf = await page.pdf({ format: 'A4' });
    expect(pdf.subarray(0, 4).toString()).toBe('%PDF');
    await page.close();
  });

  it('opens with the bearer token too; answers 401 without one, 404 for an unknown referral', async () => {
    const withToken = await fetch(`${hub.url}/referrals/${referralId}/form`, { headers: { authorization: `Bearer ${sender}` } });
    expect(withToken.status).toBe(200);
    expect(await withToken.text()).toContain('TL100037');
    expect((await fetch(`${hub.url}/referrals/${referralId}/form`)).status).toBe(401);
    const missing = await fetch(`${hub.url}/referrals/no-such-referral/form`, { headers: { authorization: `Bearer ${sender}` } });
    expect(missing.status).toBe(404);
  });

  it('opens only the form it was given for, only as a form, and not once the client is revoked', async () => {
    const { url } = (await graphql(hub.url, `{ referralFormLink(id: "${referralId}") { url } }`, undefined, sender)).data!.referralFormLink;
    const link = new URL(url).searchParams.get('link')!;
    // Another referral's form with this link: refused with a page that says why, in Chinese first.
    const other = await fetch(`${hub.url}/referrals/task-ref-004/form?link=${link}`);
    expect(other.status).toBe(401);
    expect(other.headers.get('content-type')).toContain('text/html');
    expect(await other.text()).toContain('链接无效或已过期');
    // A form link is no access token.
    const asBearer = await graphql(hub.url, '{ OrganizationList { id } }', undefined, link);
    expect(asBearer.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    const tampered = await fetch(`${hub.url}/referrals/${referralId}/form?link=${link.slice(0, -4)}AAAA`);
    expect(tampered.status).toBe(401);
    // Someone who may not read the referral gets no link for it.
    const resident = await token(hub.url, 'county-health-app', { patient_identifier: '430621196501180188' });
    const refused = await graphql(hub.url, `{ referralFormLink(id: "${referralId}") { url } }`, undefined, resident);
    expect(refused.errors?.[0]?.extensions?.code).toMatch(/NOT_FOUND|FORBIDDEN/);
    // A revoked client's links stop opening the form.
    await registry.revoke('his-taolin-township');
    expect((await fetch(url)).status).toBe(401);
  });
});
