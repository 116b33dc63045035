import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { NODE_FLAGS } from '../lib/node-flags.js';
import { projectPath } from '../lib/paths.js';

describe('V8 flags of the shipped start commands', () => {
  it('npm start runs dist/main.js with NODE_FLAGS', () => {
    const pkg = JSON.parse(readFileSync(projectPath('package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts.start).toBe(['node', ...NODE_FLAGS, 'dist/main.js'].join(' '));
  });

  it("the image's CMD runs dist/main.js with NODE_FLAGS", () => {
    const cmd = readFileSync(projectPath('Dockerfile'), 'utf8').split('\n').find((l) => l.startsWith('CMD '));
    expect(cmd).toBeDefined();
    expect(JSON.parse(cmd!.slice(4))).toEqual(['node', ...NODE_FLAGS, 'dist/main.js']);
  });

  it('this Node starts with them (it refuses an unknown flag: "bad option")', () => {
    const r = spawnSync(process.execPath, [...NODE_FLAGS, '-e', 'process.stdout.write("ok")'], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('ok');
  });
});
