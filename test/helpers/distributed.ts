import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectPath } from '../../lib/paths.js';

/**
 * Runs qoe-stream roles as separate OS processes (`node --import tsx main.ts`, the same entry as
 * `npm start`) configured through QOE_* env, so a test can kill -9 one of them at any moment.
 * Output goes to one log file per start (`<name>-<n>.log` in `dir`); children die with the test
 * process (setpriv --pdeathsig where available, and an exit hook).
 */
export interface RoleProcess {
  readonly name: string;
  /** Log file of the current (or last) start. */
  logFile(): string;
  /** Starts the process and waits until it logged 'qoe-stream started'. */
  start(): Promise<void>;
  kill9(): Promise<void>;
  /** SIGTERM: graceful stop. */
  stop(): Promise<void>;
  running(): boolean;
  starts(): number;
  /** Base URL of the current start (from its 'qoe-stream started' log line); undefined before. */
  url(): string | undefined;
}

const live = new Set<ChildProcess>();
let hooked = false;
const hasSetpriv = spawnSync('setpriv', ['--help'], { stdio: 'ignore' }).status === 0;

function waitExit(proc: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    proc.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

export function createRoleProcess(opts: { name: string; dir: string; env: Record<string, string>; readyTimeoutMs?: number }): RoleProcess {
  let proc: ChildProcess | undefined;
  let n = 0;
  let file = '';
  return {
    name: opts.name,
    logFile: () => file,
    running: () => proc !== undefined && proc.exitCode === null && proc.signalCode === null,
    starts: () => n,
    url() {
      if (file === '') return undefined;
      const line = readFileSync(file, 'utf8').split('\n').find((l) => l.includes('"qoe-stream started"'));
      try {
        return line === undefined ? undefined : (JSON.parse(line) as { url?: string }).url;
      } catch {
        return undefined;
      }
    },
    async start() {
      n += 1;
      file = join(opts.dir, `${opts.name}-${n}.log`);
      const fd = openSync(file, 'a');
      const argv = ['--import', 'tsx', projectPath('main.ts')];
      const env = { ...process.env, ...opts.env };
      const child = hasSetpriv
        ? spawn('setpriv', ['--pdeathsig', 'KILL', process.execPath, ...argv], { stdio: ['ignore', fd, fd], env, cwd: projectPath() })
        : spawn(process.execPath, argv, { stdio: ['ignore', fd, fd], env, cwd: projectPath() });
      closeSync(fd);
      proc = child;
      live.add(child);
      child.once('exit', () => live.delete(child));
      if (!hooked) {
        hooked = true;
        process.once('exit', () => {
          for (const p of live) p.kill('SIGKILL');
        });
      }
      const deadline = Date.now() + (opts.readyTimeoutMs ?? 60_000);
      while (Date.now() < deadline) {
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${opts.name} exited during startup; see ${file}`);
        if (readFileSync(file, 'utf8').includes('"qoe-stream started"')) return;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`${opts.name} not started within the deadline; see ${file}`);
    },
    async kill9() {
      const p = proc;
      if (p === undefined) return;
      p.kill('SIGKILL');
      await waitExit(p, 10_000);
    },
    async stop() {
      const p = proc;
      if (p === undefined) return;
      p.kill('SIGTERM');
      if (!(await waitExit(p, 30_000))) {
        p.kill('SIGKILL');
        await waitExit(p, 10_000);
      }
    },
  };
}
