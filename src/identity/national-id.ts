/**
 * Resident national ID numbers (居民身份证号), GB 11643-1999: 6-digit administrative region code,
 * 8-digit birth date, 3-digit sequence (odd for men, even for women) and an ISO 7064 MOD 11-2 check character.
 */
const weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const checkCharacters = '10X98765432';

/** The check character for the first 17 digits. */
export function nationalIdCheckCharacter(first17: string): string {
  if (!/^\d{17}$/.test(first17)) throw new Error('a national ID check character needs 17 digits');
  const sum = weights.reduce((total, weight, index) => total + weight * Number(first17[index]), 0);
  return checkCharacters[sum % 11]!;
}

export type NationalIdProblem = 'FORMAT' | 'BIRTH_DATE' | 'CHECK_DIGIT';

export interface NationalIdCheck {
  valid: boolean;
  problem?: NationalIdProblem;
  birthDate?: string;
  sex?: 'male' | 'female';
}

/** Checks format, birth date and check character; a lower-case x is accepted and means X. */
export function checkNationalId(value: string): NationalIdCheck {
  const id = value.trim().toUpperCase();
  if (!/^\d{17}[\dX]$/.test(id)) return { valid: false, problem: 'FORMAT' };
  const birthDate = `${id.slice(6, 10)}-${id.slice(10, 12)}-${id.slice(12, 14)}`;
  const date = new Date(`${birthDate}T00:00:00Z`);
  if (Number.isNaN(date.getTime()) || date.toISOString().slice(0, 10) !== birthDate || date.getUTCFullYear() < 1880 || date > new Date()) {
    return { valid: false, problem: 'BIRTH_DATE' };
  }
  if (nationalIdCheckCharacter(id.slice(0, 17)) !== id[17]) return { valid: false, problem: 'CHECK_DIGIT' };
  return { valid: true, birthDate, sex: Number(id[16]) % 2 === 1 ? 'male' : 'female' };
}

/** Builds a valid number from region, birth date (YYYY-MM-DD) and a sequence number whose parity matches sex. */
export function makeNationalId(region: string, birthDate: string, sequence: number, sex: 'male' | 'female'): string {
  let seq = sequence % 1000;
  if ((seq % 2 === 1) !== (sex === 'male')) seq = (seq + 1) % 1000;
  const first17 = `${region}${birthDate.replace(/-/g, '')}${String(seq).padStart(3, '0')}`;
  return first17 + nationalIdCheckCharacter(first17);
}
