import { readFileSync, readdirSync } from 'node:fs';
import { validateResource } from '@medplum/core';
import { ensureStructureDefinitions } from '../src/fhir/definitions.ts';
import { extractSearchValues } from '../src/fhir/search-index.ts';
import { validateFhirResource } from '../src/fhir/validation.ts';
ensureStructureDefinitions();
const resources: any[] = [];
for (const f of readdirSync('../shared/data/synthea-r4').slice(0, 30)) resources.push(...JSON.parse(readFileSync('../shared/data/synthea-r4/' + f, 'utf8')).entry.map((e: any) => e.resource));
for (const r of resources) for (const k of Object.keys(r)) if (typeof r[k] === 'object' && JSON.stringify(r[k]).includes('urn:uuid')) {}
const time = (label: string, f: (r: any) => unknown) => { for (let w = 0; w < 2; w++) { const t = performance.now(); for (const r of resources) { try { f(r); } catch {} } if (w) console.log(label.padEnd(30), ((performance.now() - t) / resources.length).toFixed(3), 'ms/res'); } };
console.log(resources.length, 'resources');
time('medplum validateResource', (r) => validateResource(r));
time('validateFhirResource (hub)', (r) => validateFhirResource(r));
time('extractSearchValues', (r) => extractSearchValues(r));
time('JSON.stringify', (r) => JSON.stringify(r));
