/**
 * npm run import -- <files or folders>: imports FHIR transaction and batch Bundles into the database of
 * MONGODB_URI, or into the embedded FerretDB when MONGODB_URI is not set. A progress bar on a terminal,
 * a plain summary otherwise. Exit code 1 when any file or entry failed.
 */
import { loadConfig } from '../src/config.ts';
import { openConfiguredDatabase } from '../src/database/configured-database.ts';
import { bundleFiles, importFiles, type ImportReport } from '../src/fhir/import-files.ts';
import { createHubStore, hubStoreOptions } from '../src/hub-store.ts';

const paths = process.argv.slice(2);
if (paths.length === 0) {
  console.error('usage: npm run import -- <bundle.json or folder> [...]');
  process.exit(2);
}
const config = loadConfig();
const { database, close } = await openConfiguredDatabase(config, console.log);
const tty = process.stderr.isTTY;
const started = Date.now();

function progress(done: number, total: number, report: ImportReport): void {
  if (!tty) return;
  const width = 30;
  const filled = Math.round((done / Math.max(total, 1)) * width);
  const { created, updated, unchanged, failed } = report.totals;
  process.stderr.write(`\r[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${done}/${total} files  created ${created}  updated ${updated}  unchanged ${unchanged}  failed ${failed}   `);
}

let exitCode = 0;
try {
  const { store, maintenance } = createHubStore(database.db, hubStoreOptions(config));
  await maintenance.ensureIndexes();
  const files = await bundleFiles(paths);
  const report = await importFiles(store, files, progress);
  await database.refreshStatistics();
  if (tty) process.stderr.write('\n');
  const seconds = (Date.now() - started) / 1000;
  const resources = Object.values(report.totals).reduce((a, b) => a + b, 0);
  console.log(`imported ${files.length} files, ${resources} entries in ${seconds.toFixed(1)} s (${(resources / seconds).toFixed(0)} entries/s)`);
  console.log(`  created ${report.totals.created}, updated ${report.totals.updated}, unchanged ${report.totals.unchanged}, failed ${report.totals.failed}`);
  for (const [type, counts] of Object.entries(report.byType).sort(([a], [b]) => a.localeCompare(b))) {
    console.log(`  ${type.padEnd(22)} created ${String(counts.created).padStart(6)}  updated ${String(counts.updated).padStart(5)}  unchanged ${String(counts.unchanged).padStart(6)}  failed ${String(counts.failed).padStart(4)}`);
  }
  for (const file of report.files.filter((f) => !f.ok)) console.log(`  FAILED ${file.file}: ${file.message ?? JSON.stringify(file.summary)}`);
  if (report.totals.failed > 0) exitCode = 1;
} finally {
  await close();
}
process.exit(exitCode);
