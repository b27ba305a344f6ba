import { join } from 'node:path';
import { projectRoot } from '../../src/config.ts';

/** Sample FHIR data from outside the project (../shared/data, see its MANIFEST.md), used by path. */
export const sharedData = (...parts: string[]): string => join(projectRoot, '..', 'shared', 'data', ...parts);
