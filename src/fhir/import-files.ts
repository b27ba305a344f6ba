/**
 * Imports Bundle files and folders (what `npm run import` does). A transaction Bundle whose conditional
 * references do not resolve yet is tried again after the other files, so the order of the files on the
 * command line does not matter (Synthea's patient Bundles need its provider Bundles first).
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { HubError } from '../errors.ts';
import { BundleImporter, UnresolvedReferenceError, type EntryOutcome } from './bundles.ts';
import type { FhirRepository } from './repository.ts';

export interface FileResult {
  file: string;
  ok: boolean;
  message?: string;
  summary?: Record<EntryOutcome, number>;
}

export interface ImportReport {
  files: FileResult[];
  totals: Record<EntryOutcome, number>;
  byType: Record<string, Record<EntryOutcome, number>>;
}

export async function bundleFiles(paths: string[]): Promise<string[]> {
  const files: string[] = [];
  for (const path of paths) {
    const info = await stat(path);
    if (info.isDirectory()) {
      // A folder's manifest.json (what `npm run sample-data` writes beside its Bundles) is not a Bundle.
      const names = (await readdir(path)).filter((name) => name.endsWith('.json') && name !== 'manifest.json').sort();
      files.push(...names.map((name) => join(path, name)));
    } else files.push(path);
  }
  return files;
}

export async function importFiles(
  store: FhirRepository,
  files: string[],
  onProgress: (done: number, total: number, report: ImportReport) => void = () => {},
): Promise<ImportReport> {
  const report: ImportReport = { files: [], totals: { created: 0, updated: 0, unchanged: 0, failed: 0 }, byType: {} };
  let pending = files;
  let done = 0;
  while (pending.length > 0) {
    const deferred: { file: string; error: HubError }[] = [];
    for (const file of pending) {
      const importer = new BundleImporter(store);
      try {
        const bundle: unknown = JSON.parse(await readFile(file, 'utf8'));
        const result = await importer.import(bundle);
        for (const [outcome, count] of Object.entries(result.summary) as [EntryOutcome, number][]) report.totals[outcome] += count;
        for (const [type, counts] of Object.entries(result.byType)) {
          const into = (report.byType[type] ??= { created: 0, updated: 0, unchanged: 0, failed: 0 });
          for (const [outcome, count] of Object.entries(counts) as [EntryOutcome, number][]) into[outcome] += count;
        }
        report.files.push({ file, ok: result.summary.failed === 0, summary: result.summary });
        done++;
      } catch (error) {
        if (error instanceof UnresolvedReferenceError) deferred.push({ file, error });
        else {
          report.files.push({ file, ok: false, message: error instanceof HubError || error instanceof SyntaxError ? error.message : String(error) });
          report.totals.failed++;
          done++;
          if (!(error instanceof HubError) && !(error instanceof SyntaxError)) throw error;
        }
      }
      onProgress(done, files.length, report);
    }
    if (deferred.length === pending.length) {
      // No progress in a whole round: these references will not resolve.
      for (const { file, error } of deferred) {
        report.files.push({ file, ok: false, message: error.message });
        report.totals.failed++;
      }
      break;
    }
    pending = deferred.map(({ file }) => file);
  }
  return report;
}
