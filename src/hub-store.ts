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
import type { Logger } from './log.ts';
import { recognitionExtension } from './recognition/store-extension.ts';
import { referralExtension } from './referral/store-extension.ts';
import { readingExtension } from './reading/store-extension.ts';
import type { CriticalRule } from './reading/rules.ts';

export const DEFAULT_RECOGNITION_MARK = 'HR';

export interface HubStoreOptions {
  listMaxResults: number;
  nationalIdSystem?: string;
  /** the recognition mark's text (RECOGNITION_MARK) */
  recognitionMark?: string;
  logger?: Logger;
  /** critical-value rules and acknowledgement minutes (CRITICAL_RULES, CRITICAL_ACK_MINUTES) */
  reading?: { rules?: CriticalRule[]; ackMinutes?: number };
}

export function createHubStore(db: Db, options: HubStoreOptions): FhirStore {
  return new FhirStore(db, {
    listMaxResults: options.listMaxResults,
    ...(options.logger ? { logger: options.logger } : {}),
    // The recognition extension comes before ownership: a member's code map belongs to the member it translates for.
    extensions: [identityExtension(options.nationalIdSystem ?? DEFAULT_NATIONAL_ID_SYSTEM), referralExtension, readingExtension(options.reading ?? {}), recognitionExtension({ markText: options.recognitionMark ?? DEFAULT_RECOGNITION_MARK }), ownershipExtension],
  });
}
