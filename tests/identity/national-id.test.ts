import { describe, expect, it } from 'vitest';
import { checkNationalId, makeNationalId, nationalIdCheckCharacter } from '../../src/identity/national-id.ts';

describe('national ID numbers (GB 11643)', () => {
  it('accepts the published example and computes its check character', () => {
    // The example number of GB 11643-1999: 11010519491231002X.
    expect(nationalIdCheckCharacter('11010519491231002')).toBe('X');
    expect(checkNationalId('11010519491231002X')).toEqual({ valid: true, birthDate: '1949-12-31', sex: 'female' });
    expect(checkNationalId('11010519491231002x').valid).toBe(true);
  });

  it('refuses a wrong check character, an impossible birth date and a wrong format', () => {
    expect(checkNationalId('110105194912310021')).toEqual({ valid: false, problem: 'CHECK_DIGIT' });
    expect(checkNationalId('110105194902300021').problem).toBe('BIRTH_DATE');
    expect(checkNationalId('1101051949123100').problem).toBe('FORMAT');
    expect(checkNationalId('11010519491231002Y').problem).toBe('FORMAT');
  });

  it('makes valid numbers whose sequence parity matches the sex', () => {
    const male = makeNationalId('430621', '1968-03-15', 1, 'male');
    const female = makeNationalId('430621', '1968-03-15', 1, 'female');
    expect(checkNationalId(male)).toMatchObject({ valid: true, sex: 'male', birthDate: '1968-03-15' });
    expect(checkNationalId(female)).toMatchObject({ valid: true, sex: 'female' });
  });
});
