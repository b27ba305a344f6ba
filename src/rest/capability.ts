/**
 * `GET /fhir/metadata`: the CapabilityStatement, generated from what the hub really serves — the served types,
 * each type's search parameters (the same definitions the search compiler uses), the interactions the REST
 * facade implements — and the token endpoint as SMART's `oauth-uris` extension in `rest.security`.
 */
import type { CapabilityStatement, CapabilityStatementRestResource } from '@medplum/fhirtypes';
import { servedResourceTypes } from '../fhir/resource-types.ts';
import { searchParametersOf } from '../fhir/search-parameters.ts';

export const REST_INTERACTIONS = ['read', 'vread', 'update', 'delete', 'history-instance', 'history-type', 'create', 'search-type'] as const;
export const RESULT_PARAMETERS = ['_count', '_sort', '_total', '_summary', '_elements', '_include', '_revinclude', '_format', '_cursor'] as const;

export function capabilityStatement(base: string, version: string): CapabilityStatement {
  const resources: CapabilityStatementRestResource[] = servedResourceTypes.map((type) => ({
    type,
    interaction: REST_INTERACTIONS.map((code) => ({ code })),
    versioning: 'versioned-update',
    readHistory: true,
    updateCreate: true,
    conditionalCreate: true,
    conditionalUpdate: false,
    conditionalDelete: 'not-supported',
    referencePolicy: ['literal', 'local'],
    searchInclude: [...searchParametersOf(type).values()].filter((parameter) => parameter.type === 'reference').map((parameter) => `${type}:${parameter.code}`),
    searchParam: [...searchParametersOf(type).values()]
      .sort((a, b) => a.code.localeCompare(b.code))
      .map((parameter) => ({ name: parameter.code, type: parameter.type, ...(parameter.description ? { documentation: parameter.description.slice(0, 500) } : {}) })),
    ...(type === 'Patient' ? { operation: [{ name: 'everything', definition: 'http://hl7.org/fhir/OperationDefinition/Patient-everything' }, { name: 'graphql', definition: 'http://hl7.org/fhir/OperationDefinition/Resource-graphql' }] } : {}),
  }));
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: new Date().toISOString(),
    publisher: '医联体 consortium hub',
    kind: 'instance',
    software: { name: 'consortium-hub', version },
    implementation: { description: '医联体数据互通平台 Consortium hub: FHIR R4 REST beside GraphQL on one store', url: base },
    fhirVersion: '4.0.1',
    format: ['application/fhir+json', 'json'],
    rest: [
      {
        mode: 'server',
        documentation: 'Every read and write goes through the same store, access policy, rate limits and audit trail as /graphql. Paging is by key (Bundle.link next/previous stay correct while resources arrive).',
        security: {
          cors: false,
          service: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'SMART-on-FHIR' }], text: 'OAuth2 client credentials (SMART Backend Services style); bearer tokens' }],
          extension: [{ url: 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris', extension: [{ url: 'token', valueUri: `${base.replace(/\/fhir$/, '')}/oauth/token` }] }],
        },
        resource: resources,
        interaction: [{ code: 'transaction' }, { code: 'batch' }],
        operation: [{ name: 'graphql', definition: 'http://hl7.org/fhir/OperationDefinition/Resource-graphql' }],
      },
    ],
  };
}
