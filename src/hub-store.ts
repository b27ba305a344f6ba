/**
 * Where the store meets the domains: the one place that hands the store what each domain adds to every write
 * (src/fhir/store.ts `StoreExtension`), so that the store imports no domain and every process (the hub,
 * `npm run seed`/`import`/`reindex`, the bench, the tests) writes the same way.
 */
import type { Db } from 'mongodb';
import { ownershipExtension } from './auth/access-policy.ts';
import { FhirStore } from './fhir/store.ts';
import { DEFAULT_NATIONAL_ID_SYSTEM } from './identity/patient-identity.ts';
import { identityExtension } from './identity/store-extension.ts';
import { referralExtension } from './referral/store-extension.ts';

export interface HubStoreOptions {
  listMaxResults: number;
  nationalIdSystem?: string;
}

export function createHubStore(db: Db, options: HubStoreOptions): FhirStore {
  return new FhirStore(db, {
    listMaxResults: options.listMaxResults,
    extensions: [identityExtension(options.nationalIdSystem ?? DEFAULT_NATIONAL_ID_SYSTEM), referralExtension, ownershipExtension],
  });
}
