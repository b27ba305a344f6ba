/**
 * Where the store meets the domains: the one place that registers each domain's hooks (src/fhir/hooks.ts), once
 * per process, so that the store imports no domain and every process (the hub, `npm run seed`/`import`/
 * `reindex`, the bench, the tests) writes the same way. Hands out the repository and, beside it, its maintenance.
 */
import type { Db } from 'mongodb';
import { ownershipHooks } from './auth/access-policy.ts';
import { StoreHooks } from './fhir/hooks.ts';
import { openStore, type FhirStore } from './fhir/store.ts';
import type { StoreMaintenance } from './fhir/storage/maintenance.ts';
import { DEFAULT_NATIONAL_ID_SYSTEM } from './identity/patient-identity.ts';
import { identityHooks } from './identity/hooks.ts';
import type { Logger } from './log.ts';
import { recognitionHooks } from './recognition/hooks.ts';
import { referralHooks } from './referral/hooks.ts';
import { readingHooks } from './reading/hooks.ts';
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

/** The options of the hub's store from its configuration (the same in the hub and in every script). */
export function hubStoreOptions(config: { LIST_MAX_RESULTS: number; NATIONAL_ID_SYSTEM: string; RECOGNITION_MARK: string; CRITICAL_RULES?: CriticalRule[] | undefined; CRITICAL_ACK_MINUTES: number }, logger?: Logger): HubStoreOptions {
  return {
    listMaxResults: config.LIST_MAX_RESULTS,
    nationalIdSystem: config.NATIONAL_ID_SYSTEM,
    recognitionMark: config.RECOGNITION_MARK,
    reading: { ...(config.CRITICAL_RULES ? { rules: config.CRITICAL_RULES } : {}), ackMinutes: config.CRITICAL_ACK_MINUTES },
    ...(logger ? { logger } : {}),
  };
}

/** Every domain's hooks, in the order they run. */
export function hubHooks(options: Omit<HubStoreOptions, 'listMaxResults' | 'logger'> = {}): StoreHooks {
  return new StoreHooks([
    identityHooks(options.nationalIdSystem ?? DEFAULT_NATIONAL_ID_SYSTEM),
    referralHooks,
    readingHooks(options.reading ?? {}),
    // Recognition comes before ownership: a member's code map belongs to the member it translates for.
    recognitionHooks({ markText: options.recognitionMark ?? DEFAULT_RECOGNITION_MARK }),
    ownershipHooks,
  ]);
}

export function createHubStore(db: Db, options: HubStoreOptions): { store: FhirStore; maintenance: StoreMaintenance } {
  return openStore(db, { listMaxResults: options.listMaxResults, hooks: hubHooks(options), ...(options.logger ? { logger: options.logger } : {}) });
}
