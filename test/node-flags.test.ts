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

  it('every flag is one this Node accepts', () => {
    for (const flag of NODE_FLAGS) expect(process.allowedNodeEnvironmentFlags.has(flag.split('=')[0]!)).toBe(true);
  });
});
