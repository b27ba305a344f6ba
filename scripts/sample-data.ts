/**
 * npm run sample-data -- --patients N --seed S [--age 18-45 | --age all] [--years 5] [--reference-date 20260101] [--out DIR]
 *
 * Generates a synthetic population with Synthea 3.3.0 (Maven Central; needs Java 17 and Maven, and nothing
 * else) into DIR, by default .sample-data/synthea-<N>p-seed<S>/ (git-ignored): compact FHIR R4 Bundles and a
 * manifest.json with the command and the resources per type. Import it with `npm run import -- <DIR>`.
 */
import { resolve } from 'node:path';
import { defaultPopulation, generatePopulation, type PopulationOptions } from './synthea.ts';
import { projectRoot } from '../src/config.ts';

const usage = 'usage: npm run sample-data -- --patients N --seed S [--age MIN-MAX | --age all] [--years Y] [--reference-date YYYYMMDD] [--out DIR]';
const args = process.argv.slice(2);
const value = (name: string): string | undefined => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? args[at + 1] : undefined;
};
const integer = (name: string, fallback?: number): number => {
  const text = value(name);
  if (text === undefined && fallback !== undefined) return fallback;
  if (text === undefined || !/^\d+$/.test(text)) {
    console.error(`--${name} needs a whole number\n${usage}`);
    process.exit(2);
  }
  return Number(text);
};

const age = value('age') ?? `${defaultPopulation.minAge}-${defaultPopulation.maxAge}`;
const ageRange = /^(\d+)-(\d+)$/.exec(age);
if (age !== 'all' && !ageRange) {
  console.error(`--age is MIN-MAX (e.g. 18-45) or all\n${usage}`);
  process.exit(2);
}
const referenceDate = value('reference-date') ?? defaultPopulation.referenceDate;
if (!/^\d{8}$/.test(referenceDate)) {
  console.error(`--reference-date is YYYYMMDD\n${usage}`);
  process.exit(2);
}
const options: PopulationOptions = {
  patients: integer('patients'),
  seed: integer('seed'),
  ...(ageRange ? { minAge: Number(ageRange[1]), maxAge: Number(ageRange[2]) } : {}),
  years: integer('years', defaultPopulation.years),
  referenceDate,
  state: defaultPopulation.state,
};
const out = resolve(value('out') ?? resolve(projectRoot, '.sample-data', `synthea-${options.patients}p-seed${options.seed}`));
try {
  const manifest = await generatePopulation(options, out, console.log);
  console.log(`resources: ${Object.entries(manifest.resources).map(([type, count]) => `${type} ${count}`).join(', ')}`);
  console.log(`import with: npm run import -- ${out}`);
} catch (error) {
  console.error(error instanceof Error ? error.message : String(error));
  process.exit(1);
}
