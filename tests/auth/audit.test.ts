/**
 * The audit trail: events are buffered (reads do not wait for them), name who, for which organisation, which
 * patient, which resources and which query, and none is lost on graceful shutdown.
 */
import type { AuditEvent } from '@medplum/fhirtypes';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Hub } from '../../src/app.ts';
import { demoResources } from '../../src/demo/seed.ts';
import { storedResources } from '../support/commands.ts';
import { graphql, type TestDatabase } from '../support/hub.ts';
import { authenticatedDemoHub, token } from '../support/auth.ts';
import { AuditTrail, RequestAudit } from '../../src/audit/audit-trail.ts';
import type { Caller } from '../../src/auth/tokens.ts';
import { createHubStore } from '../../src/hub-store.ts';
import { createLogger } from '../../src/log.ts';

let database: TestDatabase;
let hub: Hub;
beforeAll(async () => {
  // A flush interval longer than the test: only the batch size or the shutdown writes events.
  ({ database, hub } = await authenticatedDemoHub('audit', { AUDIT_FLUSH_MS: '60000' }));
});
afterAll(async () => database.drop());

const auditEvents = async (): Promise<AuditEvent[]> =>
  storedResources<AuditEvent>(database.connection.db, 'AuditEvent');

it('buffers one event per patient read, and writes every one of them on graceful shutdown', async () => {
  const member = await token(hub.url, 'his-donghu-county');
  const patients = demoResources().filter((resource) => resource.resourceType === 'Patient').slice(0, 12).map((resource) => resource.id!);
  for (const id of patients) {
    const result = await graphql(hub.url, `query Chart($id: ID!) { Patient(id: $id) { id ObservationList(_reference: "subject", _count: 3) { id } } }`, { id }, member);
    expect(result.errors).toBeUndefined();
  }
  const refused = await graphql(hub.url, `{ possibleDuplicates { reason } }`, undefined, member);
  expect(refused.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  expect(await auditEvents()).toEqual([]);
  expect(hub.auditTrail.pending).toBe(patients.length + 1);

  await hub.stop();
  const events = await auditEvents();
  expect(events).toHaveLength(patients.length + 1);
  for (const id of patients) {
    const event = events.find((e) => e.entity?.[0]?.what?.reference === `Patient/${id}`)!;
    expect(event, id).toBeDefined();
    expect(event).toMatchObject({ action: 'R', outcome: '0', agent: [{ who: { identifier: { value: 'his-donghu-county' } }, requestor: true }, { who: { reference: 'Organization/org-donghu-county' } }] });
    expect(event.entity!.every((entity) => !entity.what?.reference?.startsWith('Patient/') || entity.what.reference === `Patient/${id}`)).toBe(true);
    const query = event.entity!.find((entity) => entity.query)!;
    expect(Buffer.from(query.query!, 'base64').toString('utf8')).toContain('ObservationList(_reference: "subject"');
    expect(query.description).toMatch(/^Chart \(sha256 [0-9a-f]{16}\)$/);
    expect(new Date(event.recorded).getTime()).toBeGreaterThan(Date.now() - 120_000);
  }
  expect(events.filter((event) => event.outcome === '4')).toHaveLength(1);
});

it('writes the events that arrive while it writes in the next batch: one write per flush, not one per request', async () => {
  const { store } = createHubStore(database.connection.db, { listMaxResults: 1000 });
  const writes: number[] = [];
  const writeMany = store.writeMany.bind(store);
  store.writeMany = async (items, options) => {
    writes.push(items.length);
    return writeMany(items, options);
  };
  const trail = new AuditTrail(store, createLogger('error'), 60_000);
  const caller: Caller = { clientId: 'steady-load', kind: 'member', scopes: [], tokenId: 'steady-load-token' };
  const request = (i: number): void => {
    const audit = new RequestAudit();
    audit.touched([{ resourceType: 'Observation', id: `steady-${i}`, status: 'final', code: { text: '血糖' }, subject: { reference: `Patient/steady-${i % 4}` } }], 'R');
    trail.record({ caller, audit, query: '{ Observation(id: "x") { id } }', outcome: 'success' });
  };
  // A steady stream of requests, one per turn of the event loop, while the first flush writes.
  request(0);
  const first = trail.flush();
  for (let i = 1; i <= 40; i++) {
    request(i);
    await new Promise((resolve) => setImmediate(resolve));
  }
  await first;
  expect(writes).toEqual([1]);
  expect(trail.pending).toBe(40);
  await trail.stop();
  expect(writes).toEqual([1, 40]);
  const events = (await auditEvents()).filter((event) => event.agent?.[0]?.who?.identifier?.value === 'steady-load');
  expect(events.map((event) => event.entity?.find((entity) => entity.what?.reference?.startsWith('Observation/'))?.what?.reference).sort()).toEqual(
    Array.from({ length: 41 }, (_, i) => `Observation/steady-${i}`).sort(),
  );
});
