/**
 * Walks the whole GraphQL schema with a resident token (王伟, via the county health app): every query field,
 * every list, connection and single read of every served type, every reverse reference of the directory
 * types, references, person and history, and every delete mutation. No answer may carry another resident's
 * data, and nothing may be written.
 */
import type { Resource } from '@medplum/fhirtypes';
import { GraphQLObjectType } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hub } from '../../src/app.ts';
import { patientReferences } from '../../src/audit/audit-trail.ts';
import { demoResources } from '../../src/demo/seed.ts';
import { servedResourceTypes } from '../../src/fhir/resource-types.ts';
import { searchParametersOf } from '../../src/fhir/search-parameters.ts';
import { buildHubSchema } from '../../src/graphql/schema.ts';
import { graphql, type TestDatabase } from '../support/hub.ts';
import { authenticatedDemoHub, token } from '../support/auth.ts';

let database: TestDatabase;
let hub: Hub;
let resident: string;
let admin: string;
// 王伟's records, read from fixtures/demo-consortium.json.
const ownRecords = ['pat-donghu-county-001', 'pat-jiangnan-provincial-001', 'pat-taolin-township-001'];
const ownRefs = new Set(ownRecords.map((id) => `Patient/${id}`));
const directoryTypes = ['Organization', 'Practitioner', 'PractitionerRole', 'Location'];

beforeAll(async () => {
  ({ database, hub } = await authenticatedDemoHub('resident_walk'));
  resident = await token(hub.url, 'county-health-app', { patient_identifier: '43062120021114011X' });
  admin = await token(hub.url, 'consortium-admin');
  // Make the audit trail hold events about several residents.
  await graphql(hub.url, `{ ObservationList(_count: 300) { id } }`, undefined, admin);
  await hub.auditTrail.flush();
});
afterAll(async () => {
  await hub.stop();
  await database.drop();
});

/** Every resource JSON anywhere in an answer (fields named json). */
function resourcesIn(value: unknown, found: Resource[] = []): Resource[] {
  if (Array.isArray(value)) value.forEach((item) => resourcesIn(item, found));
  else if (value && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      if (key === 'json' && item && typeof item === 'object' && 'resourceType' in item) found.push(item as Resource);
      else resourcesIn(item, found);
    }
  }
  return found;
}

function assertOwn(label: string, data: unknown): number {
  const resources = resourcesIn(data);
  for (const resource of resources) {
    if (directoryTypes.includes(resource.resourceType)) continue;
    if (resource.resourceType === 'Patient') expect(ownRecords, label).toContain(resource.id);
    const refs = resource.resourceType === 'AuditEvent'
      ? ((resource as { entity?: { what?: { reference?: string } }[] }).entity ?? []).map((e) => e.what?.reference).filter((r): r is string => r?.startsWith('Patient/') ?? false)
      : patientReferences(resource);
    for (const ref of refs) expect(ownRefs.has(ref), `${label}: ${resource.resourceType}/${resource.id} refers to ${ref}`).toBe(true);
    if (resource.resourceType !== 'Patient') expect(refs.length, `${label}: ${resource.resourceType}/${resource.id} names no patient`).toBeGreaterThan(0);
  }
  return resources.length;
}

describe('a resident token across the whole schema', () => {
  it('lists, connections and single reads of every served type show only its person', async () => {
    const queryFields = buildHubSchema().getQueryType()!.getFields();
    const fixtureByType = new Map<string, Resource[]>();
    for (const resource of demoResources()) fixtureByType.set(resource.resourceType, [...(fixtureByType.get(resource.resourceType) ?? []), resource]);
    let seen = 0;
    for (const type of servedResourceTypes) {
      expect(queryFields[`${type}List`], type).toBeDefined();
      const list = await graphql(hub.url, `{ ${type}List(_count: 1000) { json } }`, undefined, resident);
      expect(list.errors?.[0]?.extensions?.code ?? 'OK', `${type}List`).toMatch(/^(OK|FORBIDDEN)$/);
      seen += assertOwn(`${type}List`, list.data);
      const connection = await graphql(hub.url, `{ ${type}Connection(_count: 1000) { count edges { resource { json } } } }`, undefined, resident);
      seen += assertOwn(`${type}Connection`, connection.data);
      // Every fixture resource of another resident is invisible by id.
      for (const resource of fixtureByType.get(type) ?? []) {
        const refs = resource.resourceType === 'Patient' ? [`Patient/${resource.id}`] : patientReferences(resource);
        if (refs.length === 0 || refs.some((ref) => ownRefs.has(ref))) continue;
        const one = await graphql(hub.url, `{ ${type}(id: "${resource.id}") { json } }`, undefined, resident);
        expect(one.data?.[type] ?? null, `${type}/${resource.id}`).toBeNull();
        expect(one.errors?.[0]?.extensions?.code, `${type}/${resource.id}`).toBe('NOT_FOUND');
        break;
      }
    }
    expect(seen).toBeGreaterThan(20);
  });

  it('reverse references from organisations and practitioners, and references, stay inside its person', async () => {
    const schema = buildHubSchema();
    for (const directoryType of directoryTypes) {
      const fields = (schema.getType(directoryType) as GraphQLObjectType).getFields();
      const ids = demoResources().filter((r) => r.resourceType === directoryType).map((r) => r.id!);
      if (ids.length === 0) continue;
      const selections = Object.keys(fields)
        .filter((name) => name.endsWith('List') && fields[name]!.args.some((arg) => arg.name === '_reference'))
        .map((name) => {
          const type = name.slice(0, -'List'.length);
          const parameter = [...searchParametersOf(type).values()].find((p) => p.type === 'reference' && p.targets.includes(directoryType))!;
          return `${name}(_reference: "${parameter.key}", _count: 1000) { json }`;
        });
      for (const id of ids.slice(0, 3)) {
        const result = await graphql(hub.url, `{ ${directoryType}(id: "${id}") { ${selections.join(' ')} } }`, undefined, resident);
        expect(result.errors?.filter((e) => e.extensions?.code !== 'FORBIDDEN') ?? [], `${directoryType}/${id}`).toEqual([]);
        assertOwn(`${directoryType}/${id} reverse references`, result.data);
      }
    }
    const references = await graphql(
      hub.url,
      `{ ObservationList(_count: 1000) { subject { resource { ... on Patient { json } } } encounter { resource(optional: true) { ... on Encounter { json } } } }
         TaskList { focus { resource(optional: true) { ... on ServiceRequest { json subject { resource { ... on Patient { json } } } } } } } }`,
      undefined,
      resident,
    );
    expect(references.errors).toBeUndefined();
    expect(assertOwn('references', references.data)).toBeGreaterThan(0);
    // Someone else's Observation cannot be reached by a reference either: the only way in is by id.
    const foreign = demoResources().find((r) => r.resourceType === 'Observation' && !patientReferences(r).some((ref) => ownRefs.has(ref)))!;
    const direct = await graphql(hub.url, `{ DiagnosticReportList(result: "Observation/${foreign.id}") { json } }`, undefined, resident);
    expect(direct.data?.DiagnosticReportList ?? []).toEqual([]);
  });

  it('person, history, duplicates and audit events: its own only', async () => {
    const own = await graphql(hub.url, `{ person(identifier: "43062120021114011X") { records { json } } patientHistory(patient: "pat-jiangnan-provincial-001", first: 200) { entries { resource { ... on Observation { json } ... on Encounter { json } ... on DiagnosticReport { json } ... on ServiceRequest { json } } } } }`, undefined, resident);
    expect(own.errors).toBeUndefined();
    expect(assertOwn('own person and history', own.data)).toBeGreaterThan(3);
    for (const query of [
      `{ person(patient: "pat-taolin-township-002") { id } }`,
      `{ patientHistory(patient: "pat-taolin-township-002") { entries { type } } }`,
      `{ person(identifier: "https://demo.consortium-hub.cn/sid/donghu-county/mrn|DH100074") { id } }`,
    ]) {
      const other = await graphql(hub.url, query, undefined, resident);
      expect(other.data ?? null, query).toBeNull();
      expect(other.errors?.[0]?.extensions?.code, query).toBe('NOT_FOUND');
    }
    expect((await graphql(hub.url, `{ possibleDuplicates { reason } }`, undefined, resident)).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const audit = await graphql(hub.url, `{ AuditEventList(_count: 1000) { json } }`, undefined, resident);
    expect(audit.errors).toBeUndefined();
    expect(assertOwn('audit events', audit.data)).toBeGreaterThan(0);
  });

  it('writes nothing through any mutation', async () => {
    const before = await Promise.all(servedResourceTypes.map((type) => database.connection.db.collection(type).countDocuments({})));
    const mutationFields = Object.keys(buildHubSchema().getMutationType()!.getFields());
    for (const type of servedResourceTypes) {
      expect(mutationFields).toContain(`${type}Delete`);
      const target = demoResources().find((r) => r.resourceType === type && (r.resourceType === 'Patient' ? ownRefs.has(`Patient/${r.id}`) : patientReferences(r).some((ref) => ownRefs.has(ref))));
      const result = await graphql(hub.url, `mutation { ${type}Delete(id: "${target?.id ?? 'none'}") { versionId } }`, undefined, resident);
      expect(result.errors?.[0]?.extensions?.code, `${type}Delete`).toMatch(/^(FORBIDDEN|NOT_FOUND)$/);
    }
    const create = await graphql(hub.url, `mutation { PatientCreate(res: { name: [{ text: "冒名" }] }) { id } }`, undefined, resident);
    expect(create.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const importing = await graphql(hub.url, `mutation($b: JSON!) { importBundle(bundle: $b) { summary { created } } }`, { b: { resourceType: 'Bundle', type: 'batch', entry: [{ resource: { resourceType: 'Patient', name: [{ text: '冒名' }] }, request: { method: 'POST', url: 'Patient' } }] } }, resident);
    expect(JSON.stringify(importing)).not.toContain('"created":1');
    const link = await graphql(hub.url, `mutation { unlinkPatientRecord(patient: "pat-taolin-township-001", reason: "me") { id } }`, undefined, resident);
    expect(link.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const after = await Promise.all(servedResourceTypes.map((type) => database.connection.db.collection(type).countDocuments({})));
    // Audit events are written by the hub itself; nothing else changes.
    expect(after.filter((_, i) => servedResourceTypes[i] !== 'AuditEvent')).toEqual(before.filter((_, i) => servedResourceTypes[i] !== 'AuditEvent'));
  });
});
