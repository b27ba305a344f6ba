import { servedResourceTypes } from '../fhir/resource-types.ts';
import type { QueryResolvers } from '../generated/graphql.ts';

export interface HubStatusModel {
  name: string;
  version: string;
  fhirVersion: string;
  resourceTypes: string[];
  databaseReachable: boolean;
}

export const hubStatusResolvers: Pick<QueryResolvers, 'hubStatus'> = {
  hubStatus: async (_parent, _args, context) => ({
    name: 'consortium-hub',
    version: process.env.npm_package_version ?? '0.1.0',
    fhirVersion: '4.0.1',
    resourceTypes: [...servedResourceTypes],
    databaseReachable: await context.databaseReachable(),
  }),
};
