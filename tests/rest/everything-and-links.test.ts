/**
 * `Patient/<id>/$everything` pages across types by key, whatever the number of resources (1,100 Observations of
 * one patient, read 50 at a time to the end: each once, nothing left out), and leaves the audit trail out unless
 * `_type` asks for it; links in REST answers are built from the hub's own address, never from the Host header.
 */
import type { Bundle, Resource } from '@medplum/fhirtypes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../../src/app.ts';
import { authenticatedDemoHub, token } from '../support/auth.ts';
import type { TestDatabase } from '../support/hub.ts';

let database: TestDatabase;
let hub: Hub;
let admin: string;
const PATIENT = 'pat-everything-001';

beforeAll(async () => {
  ({ database, hub } = await authenticatedDemoHub('everything'));
  admin = await token(hub.url, 'consortium-admin');
  const resources: Resource[] = [
    { resourceType: 'Patient', id: PATIENT, name: [{ text: '全记录患者' }], managingOrganization: { reference: 'Organization/org-donghu-county' } },
    ...Array.from({ length: 1100 }, (_, i): Resource => ({ resourceType: 'Observation', id: `obs-everything-${i}`, status: 'final', code: { text: '血压' }, subject: { reference: `Patient/${PATIENT}` }, effectiveDateTime: `2026-01-01T08:${String(i % 60).padStart(2, '0')}:00+08:00` })),
    ...Array.from({ length: 3 }, (_, i): Resource => ({ resourceType: 'Encounter', id: `enc-everything-${i}`, status: 'finished', class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' }, subject: { reference: `Patient/${PATIENT}` } })),
  ];
  await database.store.putMany(resources);
}, 120_000);
afterAll(async () => {
  await hub?.stop();
  await database?.drop();
});

async function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: Bundle }> {
  const response = await fetch(url, { headers: { authorization: `Bearer ${admin}`, accept: 'application/fhir+json', ...headers } });
  return { status: response.status, body: (await response.json()) as Bundle };
}

describe('$everything', () => {
  it('pages 50 at a time across types to the end, each resource once, with no audit events', async () => {
    // Reads of the patient leave AuditEvents about it; they must not come back.
    for (let i = 0; i < 3; i++) await get(`${hub.url}/fhir/Patient/${PATIENT}`);
    await hub.auditTrail.flush();
    const seen: string[] = [];
    let url: string | undefined = `${hub.url}/fhir/Patient/${PATIENT}/$everything?_count=50`;
    let pages = 0;
    while (url) {
      const { status, body } = await get(url);
      expect(status, JSON.stringify(body).slice(0, 300)).toBe(200);
      expect(body.entry!.length).toBeLessThanOrEqual(50);
      seen.push(...body.entry!.map((entry) => `${entry.resource!.resourceType}/${entry.resource!.id}`));
      url = body.link?.find((link) => link.relation === 'next')?.url;
      pages++;
    }
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.filter((key) => key.startsWith('Observation/'))).toHaveLength(1100);
    expect(seen.filter((key) => key.startsWith('Encounter/'))).toHaveLength(3);
    expect(seen).toContain(`Patient/${PATIENT}`);
    expect(seen.some((key) => key.startsWith('AuditEvent/'))).toBe(false);
    expect(pages).toBe(Math.ceil(seen.length / 50));
  });

  it('gives the audit trail when _type asks for it', async () => {
    const { status, body } = await get(`${hub.url}/fhir/Patient/${PATIENT}/$everything?_type=AuditEvent&_count=100`);
    expect(status).toBe(200);
    expect(body.entry!.length).toBeGreaterThan(0);
    expect(body.entry!.every((entry) => entry.resource!.resourceType === 'AuditEvent')).toBe(true);
  });
});

describe('links in REST answers', () => {
  it('point at the hub, whatever Host the request names', async () => {
    const { body } = await get(`${hub.url}/fhir/Observation?patient=Patient/${PATIENT}&_count=10`, { host: 'evil.example' });
    const urls = [...(body.link ?? []).map((link) => link.url), ...(body.entry ?? []).map((entry) => entry.fullUrl ?? '')];
    expect(urls.length).toBeGreaterThan(5);
    for (const url of urls) expect(url.startsWith(`${hub.url}/fhir/`), url).toBe(true);
  });
});
