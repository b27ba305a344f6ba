/**
 * Sample FHIR data the tests read, all of it from the repository or its packages (nothing beside the repository):
 *
 * - a small Synthea 3.3 population committed in fixtures/synthea/ (written by `npm run sample-data`, the
 *   command in its README.md and manifest.json, the resources per type in the manifest);
 * - HL7's official R4 examples from the npm package they are published in (`hl7.fhir.r4.examples@4.0.1`, a
 *   devDependency).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { projectRoot } from '../../src/config.ts';

/** The committed Synthea sample: one transaction Bundle per patient, the hospital and practitioner batches. */
export const syntheaSample = join(projectRoot, 'fixtures', 'synthea');

export interface SyntheaManifest {
  command: string;
  files: number;
  entries: number;
  resources: Record<string, number>;
}

export const syntheaManifest = (): SyntheaManifest => JSON.parse(readFileSync(join(syntheaSample, 'manifest.json'), 'utf8')) as SyntheaManifest;

/** The sample's Bundle files, the provider batches first (the patient Bundles' conditional references name them). */
export function syntheaFiles(): { providers: string[]; patients: string[] } {
  const names = readdirSync(syntheaSample).filter((name) => name.endsWith('.json') && name !== 'manifest.json').sort();
  const providers = names.filter((name) => /^(hospital|practitioner)Information\.json$/.test(name));
  return { providers: providers.map((name) => join(syntheaSample, name)), patients: names.filter((name) => !providers.includes(name)).map((name) => join(syntheaSample, name)) };
}

/** Where npm put the HL7 R4 examples package. */
export const hl7ExamplesDir = dirname(createRequire(import.meta.url).resolve('hl7.fhir.r4.examples/package.json'));

/** The package's Bundles of definitions (profiles, value sets, search parameters, …), not examples of records. */
const definitionBundles = new Set(['conceptmaps', 'dataelements', 'extensions', 'profiles-others', 'resources', 'searchParams', 'terminologies', 'types', 'v2-valuesets', 'v3-valuesets', 'valueset-expansions', 'valuesets']);

/** Types whose HL7 examples the tests read (the clinical and administrative records a member sends). */
const exampleTypes = ['Observation', 'DiagnosticReport', 'Encounter', 'ServiceRequest', 'Patient', 'Organization', 'Practitioner', 'Task'];

/**
 * HL7 example files: those of `types` (by default the clinical and administrative ones above, plus every
 * example Bundle: transaction, batch, searchset, document, message, collection).
 */
export function hl7ExampleFiles(types: string[] = [...exampleTypes, 'Bundle']): string[] {
  return readdirSync(hl7ExamplesDir)
    .filter((name) => {
      const match = /^([A-Za-z]+)-(.+)\.json$/.exec(name);
      if (!match || !types.includes(match[1]!)) return false;
      return match[1] !== 'Bundle' || !definitionBundles.has(match[2]!);
    })
    .sort()
    .map((name) => join(hl7ExamplesDir, name));
}
