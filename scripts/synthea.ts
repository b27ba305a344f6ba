/**
 * Synthetic patients from Synthea itself (`org.mitre.synthea:synthea:3.3.0` from Maven Central, run offline with
 * Java 17): resolves its classpath once with Maven (into the user's Maven repository, the classpath cached in
 * .tools/synthea/), runs it with a fixed seed and reference date, and writes the population as compact FHIR R4
 * JSON (Bundles: one transaction per patient, and the hospital and practitioner batches under stable names) with
 * a manifest.json naming the command, the options and the resources per type.
 *
 * The same options give the same files on any machine (Synthea is deterministic for a seed, a clinician seed
 * and a reference date). Used by `npm run sample-data` and the bench; the committed test sample in
 * fixtures/synthea/ was written by it (its README.md gives the command).
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { projectRoot } from '../src/config.ts';

const run = promisify(execFile);

export const SYNTHEA_VERSION = '3.3.0';
const SYNTHEA_ARTIFACT = `org.mitre.synthea:synthea:${SYNTHEA_VERSION}`;

export interface PopulationOptions {
  patients: number;
  seed: number;
  /** Age range of the living population, e.g. 18-45 (Synthea's `-a`); undefined: every age. */
  minAge?: number;
  maxAge?: number;
  /** Years of history kept in each record (Synthea's exporter.years_of_history). */
  years: number;
  /** The day Synthea simulates up to, YYYYMMDD (fixed, so that a seed gives the same records on every day). */
  referenceDate: string;
  state: string;
}

export const defaultPopulation: Omit<PopulationOptions, 'patients' | 'seed'> = {
  minAge: 18,
  maxAge: 45,
  years: 5,
  referenceDate: '20260101',
  state: 'Massachusetts',
};

export interface Manifest {
  generator: string;
  command: string;
  options: PopulationOptions;
  files: number;
  entries: number;
  /** Resources per type in all the files (every resource of a patient Bundle is its own; the batches are conditional creates). */
  resources: Record<string, number>;
}

const toolsDir = join(projectRoot, '.tools', 'synthea');

async function need(command: string, args: string[], what: string): Promise<string> {
  try {
    const { stdout, stderr } = await run(command, args, { maxBuffer: 1024 * 1024 });
    return `${stdout}${stderr}`;
  } catch {
    throw new Error(`${what} is needed to generate sample data with Synthea (Debian/Ubuntu: apt-get install openjdk-17-jre-headless maven)`);
  }
}

/** Synthea's jar and its dependencies, resolved by Maven once (downloads into ~/.m2 the first time). */
async function syntheaClasspath(log: (message: string) => void): Promise<string> {
  const cached = join(toolsDir, `classpath-${SYNTHEA_VERSION}.txt`);
  if (existsSync(cached)) {
    const classpath = readFileSync(cached, 'utf8').trim();
    if (classpath.split(':').every((entry) => existsSync(entry))) return classpath;
  }
  await need('mvn', ['-v'], 'Maven');
  mkdirSync(toolsDir, { recursive: true });
  const pom = join(toolsDir, 'pom.xml');
  writeFileSync(
    pom,
    `<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.consortium-hub</groupId><artifactId>synthea-runner</artifactId><version>1</version>
  <dependencies><dependency><groupId>org.mitre.synthea</groupId><artifactId>synthea</artifactId><version>${SYNTHEA_VERSION}</version></dependency></dependencies>
</project>
`,
  );
  log(`resolving ${SYNTHEA_ARTIFACT} and its dependencies with Maven (once; downloads into ~/.m2)`);
  const list = join(toolsDir, 'dependencies.txt');
  try {
    await run('mvn', ['-q', '-B', '-f', pom, 'dependency:build-classpath', `-Dmdep.outputFile=${list}`, '-Dmdep.includeScope=runtime'], { maxBuffer: 16 * 1024 * 1024, timeout: 30 * 60_000 });
  } catch (error) {
    throw new Error(`Maven could not resolve ${SYNTHEA_ARTIFACT}: ${(error as { stdout?: string }).stdout?.slice(-2000) ?? String(error)}`);
  }
  const classpath = readFileSync(list, 'utf8').trim();
  if (!classpath.split(':').some((entry) => entry.endsWith(`synthea-${SYNTHEA_VERSION}.jar`))) throw new Error(`Maven did not resolve ${SYNTHEA_ARTIFACT}'s jar`);
  writeFileSync(cached, `${classpath}\n`);
  return classpath;
}

/** Synthea's arguments for these options (the seed serves as the clinician seed too). */
export function syntheaArguments(options: PopulationOptions, outputDir: string): string[] {
  return [
    '-s', String(options.seed),
    '-cs', String(options.seed),
    '-p', String(options.patients),
    ...(options.minAge !== undefined || options.maxAge !== undefined ? ['-a', `${options.minAge ?? 0}-${options.maxAge ?? 140}`] : []),
    '-r', options.referenceDate,
    '--generate.only_alive_patients=true',
    `--exporter.years_of_history=${options.years}`,
    '--exporter.fhir.export=true',
    '--exporter.hospital.fhir.export=true',
    '--exporter.practitioner.fhir.export=true',
    '--exporter.metadata.export=false',
    `--exporter.baseDirectory=${outputDir}`,
    options.state,
  ];
}

/** The npm command that writes this population (for manifests and READMEs). */
export function sampleDataCommand(options: PopulationOptions, out?: string): string {
  const age = options.minAge !== undefined || options.maxAge !== undefined ? ` --age ${options.minAge ?? 0}-${options.maxAge ?? 140}` : ' --age all';
  return `npm run sample-data -- --patients ${options.patients} --seed ${options.seed}${age} --years ${options.years} --reference-date ${options.referenceDate}${out ? ` --out ${out}` : ''}`;
}

/**
 * Generates the population into `outDir` (replacing what is there) and returns its manifest. Java 17 and Maven
 * must be installed; nothing else is read from outside the repository.
 */
export async function generatePopulation(options: PopulationOptions, outDir: string, log: (message: string) => void = () => {}): Promise<Manifest> {
  const javaVersion = await need('java', ['-version'], 'Java 17');
  if (!/version "(1[7-9]|[2-9]\d)/.test(javaVersion)) throw new Error(`Synthea ${SYNTHEA_VERSION} needs Java 17 or newer; java -version says: ${javaVersion.split('\n')[0]}`);
  const classpath = await syntheaClasspath(log);
  mkdirSync(toolsDir, { recursive: true });
  const work = mkdtempSync(join(toolsDir, 'run-'));
  try {
    log(`running Synthea ${SYNTHEA_VERSION}: ${options.patients} patients, seed ${options.seed}`);
    await new Promise<void>((resolvePromise, reject) => {
      const child = spawn('java', ['-cp', classpath, 'App', ...syntheaArguments(options, join(work, 'output'))], { cwd: work, stdio: ['ignore', 'pipe', 'pipe'] });
      let tail = '';
      const keep = (chunk: Buffer): void => {
        tail = (tail + chunk.toString('utf8')).slice(-4000);
      };
      child.stdout.on('data', keep);
      child.stderr.on('data', keep);
      child.on('error', reject);
      child.on('exit', (code) => (code === 0 ? resolvePromise() : reject(new Error(`Synthea exited with code ${code}:\n${tail}`))));
    });
    const fhirDir = join(work, 'output', 'fhir');
    rmSync(outDir, { recursive: true, force: true });
    mkdirSync(outDir, { recursive: true });
    const resources: Record<string, number> = {};
    let entries = 0;
    const names = readdirSync(fhirDir).filter((name) => name.endsWith('.json')).sort();
    for (const name of names) {
      const bundle = JSON.parse(readFileSync(join(fhirDir, name), 'utf8')) as { entry?: { resource?: { resourceType?: string } }[] };
      for (const entry of bundle.entry ?? []) {
        const type = entry.resource?.resourceType ?? 'unknown';
        resources[type] = (resources[type] ?? 0) + 1;
        entries++;
      }
      // The provider batches carry a timestamp in their names: stable names keep a seed's files the same.
      const stable = name.replace(/^(hospital|practitioner)Information\d+\.json$/, '$1Information.json');
      writeFileSync(join(outDir, stable), JSON.stringify(bundle));
    }
    const manifest: Manifest = {
      generator: `Synthea ${SYNTHEA_VERSION} (${SYNTHEA_ARTIFACT}, Maven Central)`,
      command: sampleDataCommand(options),
      options,
      files: names.length,
      entries,
      resources: Object.fromEntries(Object.entries(resources).sort(([a], [b]) => a.localeCompare(b))),
    };
    writeFileSync(join(outDir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    log(`wrote ${names.length} Bundles, ${entries} resources, to ${outDir}`);
    return manifest;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** A population cached under .sample-data/ (git-ignored), generated when missing or made with other options. */
export async function cachedPopulation(options: PopulationOptions, log: (message: string) => void = () => {}): Promise<{ dir: string; manifest: Manifest }> {
  const dir = resolve(projectRoot, '.sample-data', `synthea-${options.patients}p-seed${options.seed}`);
  const manifestFile = join(dir, 'manifest.json');
  if (existsSync(manifestFile)) {
    const manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as Manifest;
    if (JSON.stringify(manifest.options) === JSON.stringify(options)) return { dir, manifest };
  }
  return { dir, manifest: await generatePopulation(options, dir, log) };
}
