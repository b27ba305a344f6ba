/** CRITICAL_RULES and CRITICAL_ACK_MINUTES: rules as JSON replace the defaults; a malformed rule stops start-up. */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { criticalRulesBroken } from '../../src/reading/rules.ts';

describe('critical-value configuration', () => {
  it('takes rules as JSON and acknowledgement minutes', () => {
    const config = loadConfig({ CRITICAL_RULES: JSON.stringify([{ id: 'LAB-NA-LOW', kind: 'lab', code: 'http://loinc.org|2951-2', unit: 'mmol/L', below: 120, text: '血钠 < 120 mmol/L' }]), CRITICAL_ACK_MINUTES: '10' });
    expect(config.CRITICAL_ACK_MINUTES).toBe(10);
    expect(criticalRulesBroken({ codes: ['http://loinc.org|2951-2'], findings: [], value: { value: 118, unit: 'mmol/L' } }, config.CRITICAL_RULES).map((rule) => rule.id)).toEqual(['LAB-NA-LOW']);
    // The defaults are replaced: potassium is no longer a rule.
    expect(criticalRulesBroken({ codes: ['http://loinc.org|2823-3'], findings: [], value: { value: 7.5, unit: 'mmol/L' } }, config.CRITICAL_RULES)).toEqual([]);
    expect(loadConfig({}).CRITICAL_RULES).toBeUndefined();
  });

  it('refuses a malformed rule with a message naming it', () => {
    expect(() => loadConfig({ CRITICAL_RULES: '[{"id":"X","kind":"lab","code":"http://loinc.org|2951-2","unit":"mmol/L","text":"no bound"}]' })).toThrow(/CRITICAL_RULES/);
    expect(() => loadConfig({ CRITICAL_RULES: 'not json' })).toThrow(/CRITICAL_RULES/);
  });
});
