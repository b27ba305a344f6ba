/** The part of @lhncbc/ucum-lhc (the NLM UCUM library, no bundled types) that the hub uses. */
declare module '@lhncbc/ucum-lhc' {
  interface UcumLhcUtils {
    validateUnitString(unit: string, suggest?: boolean): { status: 'valid' | 'invalid' | 'error'; ucumCode: string | null; msg: string[] };
    convertUnitTo(fromUnit: string, value: number, toUnit: string, options?: { suggest?: boolean; molecularWeight?: number }): { status: 'succeeded' | 'failed' | 'error'; toVal: number | null; msg: string[] };
  }
  const ucum: { UcumLhcUtils: { getInstance(): UcumLhcUtils } };
  export default ucum;
}
