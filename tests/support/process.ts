/** Starting the hub as its own process (`node --import tsx src/main.ts`), as npm start does. */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { projectRoot } from '../../src/config.ts';

export interface HubProcess {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

export function spawnHub(env: Record<string, string | undefined>): HubProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', join(projectRoot, 'src', 'main.ts')], {
    cwd: projectRoot,
    env: { ...process.env, MONGODB_URI: undefined, ...env } as NodeJS.ProcessEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

export async function waitForOutput(hub: HubProcess, pattern: RegExp, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pattern.test(hub.output())) {
    if (hub.child.exitCode !== null) throw new Error(`hub exited (${hub.child.exitCode}):\n${hub.output()}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern}:\n${hub.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
