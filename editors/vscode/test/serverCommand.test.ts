import { describe, expect, it } from 'vitest';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { findServer, fromSetting, notFoundMessage, pythonHasCkls, splitArgs, which } from '../src/serverCommand';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'ckls-ext-'));

function script(dir: string, name: string, body: string): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, `#!/bin/sh\n${body}\n`);
  fs.chmodSync(f, 0o755);
  return f;
}

describe('server command', () => {
  it('splits a command line with quotes and keeps argv arrays', () => {
    expect(splitArgs(`"/opt/my env/bin/python" -m ckls  --threads '2'`)).toEqual(['/opt/my env/bin/python', '-m', 'ckls', '--threads', '2']);
    expect(splitArgs('ckls ""')).toEqual(['ckls', '']);
    expect(fromSetting(['/x/ckls', 'serve'])).toEqual({ command: '/x/ckls', args: ['serve'], source: 'setting' });
    expect(fromSetting('')).toBeUndefined();
    expect(fromSetting([])).toBeUndefined();
    expect(fromSetting(42)).toBeUndefined();
  });

  it('finds an executable on PATH, skipping directories and non-executables', () => {
    const a = tmp(), b = tmp();
    fs.mkdirSync(path.join(a, 'ckls'));                 // a directory named ckls
    fs.writeFileSync(path.join(b, 'ckls'), 'x');         // not executable
    const c = tmp();
    const exe = script(c, 'ckls', 'exit 0');
    expect(which('ckls', { PATH: [a, b].join(path.delimiter) })).toBeUndefined();
    expect(which('ckls', { PATH: [a, b, c].join(path.delimiter) })).toBe(exe);
  });

  it('prefers the setting, then PATH, then the Python extension', async () => {
    const onPath = (f: string) => f === path.join('/usr/local/bin', 'ckls');
    const py = async () => '/venv/bin/python';
    const yes = async () => true;
    let r = await findServer({ setting: ['/a/ckls'], env: { PATH: '/usr/local/bin' }, exists: onPath, pythonInterpreter: py, hasCkls: yes });
    expect(r.found).toEqual({ command: '/a/ckls', args: [], source: 'setting' });
    r = await findServer({ setting: [], env: { PATH: '/usr/local/bin' }, exists: onPath, pythonInterpreter: py, hasCkls: yes });
    expect(r.found).toEqual({ command: '/usr/local/bin/ckls', args: [], source: 'path' });
    r = await findServer({ setting: [], env: { PATH: '/nowhere' }, exists: onPath, pythonInterpreter: py, hasCkls: yes });
    expect(r.found).toEqual({ command: '/venv/bin/python', args: ['-m', 'ckls'], source: 'python-extension' });
  });

  it('explains what it tried and how to install when nothing works', async () => {
    let r = await findServer({ setting: undefined, env: { PATH: '' }, exists: () => false,
      pythonInterpreter: async () => '/venv/bin/python', hasCkls: async () => false });
    expect(r.found).toBeUndefined();
    const msg = notFoundMessage(r.tried);
    expect(msg).toContain('pip install /path/to/ckls');
    expect(msg).toContain('/venv/bin/python -m ckls');
    expect(msg).toContain('ckls.serverCommand');
    r = await findServer({ setting: undefined, env: { PATH: '' }, exists: () => false });  // no Python extension
    expect(r.found).toBeUndefined();
    expect(r.tried).toHaveLength(2);
  });

  it('checks an interpreter by running it', async () => {
    const d = tmp();
    expect(await pythonHasCkls(script(d, 'good-python', 'exit 0'))).toBe(true);
    expect(await pythonHasCkls(script(d, 'bad-python', 'echo "No module named ckls" >&2; exit 1'))).toBe(false);
    expect(await pythonHasCkls(path.join(d, 'missing'))).toBe(false);
  });
});
