/**
 * Loads the demo consortium (fixtures/demo-consortium.json, a transaction Bundle of PUT entries) through
 * the store. Idempotent: a resource whose stored content already matches is left alone, so a second run
 * writes nothing.
 */
import { HUB_WORKFLOW_SCOPE } from '../fhir/scope.ts';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Bundle, Resource } from '@medplum/fhirtypes';
import { projectRoot } from '../config.ts';
import type { FhirRepository, WriteOutcome } from '../fhir/repository.ts';

export const demoConsortiumFile = join(projectRoot, 'fixtures', 'demo-consortium.json');

export type SeedSummary = Record<Exclude<WriteOutcome['outcome'], 'failed'>, number>;

export function demoResources(): Resource[] {
  const bundle = JSON.parse(readFileSync(demoConsortiumFile, 'utf8')) as Bundle;
  return (bundle.entry ?? []).map((entry) => entry.resource).filter((resource): resource is Resource => resource !== undefined);
}

/** Puts every demo resource; with onlyIfEmpty, does nothing (returns undefined) when members already exist. */
export async function seedDemoConsortium(store: FhirRepository, options: { onlyIfEmpty?: boolean } = {}): Promise<SeedSummary | undefined> {
  if (options.onlyIfEmpty && (await store.count('Organization')) > 0) return undefined;
  const summary: SeedSummary = { created: 0, updated: 0, unchanged: 0 };
  // The fixture holds workflow records too (referrals of the demo day): the seed writes them as the hub itself.
  for (const { outcome } of await store.scoped(HUB_WORKFLOW_SCOPE).putMany(demoResources())) if (outcome !== 'failed') summary[outcome]++;
  return summary;
}
