/**
 * The printable referral form (issue 12, item 9) in Debian's Chromium: the page is served with the bearer token
 * alone, in Chinese, A4, and shows the patient's name and both institutions (checked on the page and in a
 * screenshot of the printed area, with a CJK font really used).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { launchChromium } from '../support/browser.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../../src/app.ts';
import { projectRoot } from '../../src/config.ts';
import { authenticatedDemoHub, token } from '../support/auth.ts';
import { graphql, type TestDatabase } from '../support/hub.ts';

let database: TestDatabase;
let hub: Hub;
let browser: Browser;
let referralId: string;
let sender: string;

beforeAll(async () => {
  ({ database, hub } = await authenticatedDemoHub('referral_form'));
  sender = await token(hub.url, 'his-taolin-township');
  const submitted = await graphql(
    hub.url,
    'mutation($input: ReferralSubmitInput!) { referralSubmit(input: $input) { id } }',
    { input: { type: 'UP', patient: 'pat-taolin-township-001', to: 'org-donghu-county', reason: '2型糖尿病血糖控制不佳，需上级医院调整治疗方案', impression: '2型糖尿病', allergies: '青霉素', consent: true, attachments: ['DiagnosticReport/rep-0001'] } },
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
  it('renders the 双向转诊单 in Chinese with the patient and both institutions, offline, for the bearer of a token', async () => {
    const page = await browser.newPage({ viewport: { width: 794, height: 1123 } }); // A4 at 96 dpi
    const requested: string[] = [];
    page.on('request', (request) => requested.push(request.url()));
    await page.setExtraHTTPHeaders({ authorization: `Bearer ${sender}` });
    const answer = await page.goto(`${hub.url}/referrals/${referralId}/form`);
    expect(answer?.status()).toBe(200);
    expect(await page.title()).toContain('双向转诊（转出）单');
    expect(await page.locator('html').getAttribute('lang')).toBe('zh-CN');
    expect(await page.locator('.patient-name').innerText()).toBe('王伟');
    expect(await page.locator('.recipient').innerText()).toBe('东湖县人民医院');
    expect(await page.locator('.sender').innerText()).toContain('东湖县桃林镇卫生院');
    const text = await page.locator('body').innerText();
    for (const expected of ['存根', '2型糖尿病血糖控制不佳', '青霉素', 'DiagnosticReport/rep-0001']) expect(text).toContain(expected);
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

  it('answers 401 without a token and 404 for an unknown referral', async () => {
    expect((await fetch(`${hub.url}/referrals/${referralId}/form`)).status).toBe(401);
    const missing = await fetch(`${hub.url}/referrals/no-such-referral/form`, { headers: { authorization: `Bearer ${sender}` } });
    expect(missing.status).toBe(404);
  });
});
