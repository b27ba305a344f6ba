import { readFileSync } from 'node:fs';
import type { Bundle, Resource } from '@medplum/fhirtypes';
import { afterAll, describe, expect, it } from 'vitest';
import { HubError } from '../../src/errors.ts';
import { isServedResourceType } from '../../src/fhir/resource-types.ts';
import { validateFhirResource } from '../../src/fhir/validation.ts';
import { ValidationPool } from '../../src/fhir/validation-pool.ts';
import { hl7ExampleFiles } from '../support/sample-data.ts';

const pool = new ValidationPool(1, 2);
afterAll(() => pool.close());

/** The HL7 examples of served types, and broken copies of some of them. */
function inputs(): unknown[] {
  const resources: Resource[] = [];
  for (const file of hl7ExampleFiles()) {
    const value = JSON.parse(readFileSync(file, 'utf8')) as Resource & Bundle;
    const all = value.resourceType === 'Bundle' ? (value.entry ?? []).map((entry) => entry.resource as Resource) : [value];
    resources.push(...all.filter((resource) => resource && isServedResourceType(resource.resourceType)));
  }
  const broken: unknown[] = resources.slice(0, 40).map((resource, i) =>
    i % 4 === 0 ? { ...resource, status: 'finsihed' } : i % 4 === 1 ? { ...resource, subject: { reference: 'not a ref !!' } } : i % 4 === 2 ? { ...resource, text: { status: 'generated', div: '<div>控制\u0001字符</div>' } } : { ...resource, colour: '红' },
  );
  return [...resources, ...broken, null, 'a string', { resourceType: 'Bundle' }];
}

/** What validating in place says of a value: undefined (valid) or the refusal's code and message. */
function inPlace(value: unknown): { code: string; message: string } | undefined {
  try {
    validateFhirResource(value);
    return undefined;
  } catch (error) {
    if (!(error instanceof HubError)) throw error;
    return { code: error.code, message: error.message };
  }
}

describe('validation on worker threads', () => {
  it('refuses exactly what validation in place refuses, with the same codes, messages and OperationOutcome', async () => {
    const values = inputs();
    expect(values.length).toBeGreaterThan(150);
    let refusals: (HubError | undefined)[] | undefined;
    // The thread loads the definitions first; until it is ready the pool declines (the caller validates in place).
    for (let attempt = 0; attempt < 300 && !refusals; attempt++) {
      refusals = await pool.validate(values);
      if (!refusals) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(refusals).toBeDefined();
    const expected = values.map(inPlace);
    expect(refusals!.map((refusal) => (refusal ? { code: refusal.code, message: refusal.message } : undefined))).toEqual(expected);
    expect(expected.filter((refusal) => refusal !== undefined).length).toBeGreaterThanOrEqual(43);
    expect(expected.filter((refusal) => refusal === undefined).length).toBeGreaterThan(100);
    const outcome = refusals!.find((refusal) => refusal?.message.includes('finsihed'))?.outcome;
    expect(outcome?.issue?.[0]).toMatchObject({ severity: 'error', code: 'code-invalid' });
    expect(refusals!.some((refusal) => refusal?.message.includes('colour'))).toBe(true);
  });

  it('takes only batches of its minimum size, and none once closed', async () => {
    const small = new ValidationPool(1, 32);
    expect(small.takes(31)).toBe(false);
    expect(small.takes(32)).toBe(true);
    expect(new ValidationPool(0).takes(1000)).toBe(false);
    await small.close();
    expect(small.takes(1000)).toBe(false);
  });
});
