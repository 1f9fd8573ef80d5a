// Finds the command line that starts the ckls server: the user's setting, else `ckls` on PATH, else the Python
// extension's interpreter with `-m ckls` (that extension is optional: it is looked up, never required).
import * as path from 'path';
import * as fs from 'fs';
import { execFile } from 'child_process';

export interface ServerCommand {
  command: string;
  args: string[];
  source: 'setting' | 'path' | 'python-extension';
}

export const INSTALL_HINT = 'pip install /path/to/ckls (a clone of the ckls repository; ckls is not on PyPI)';

/** The command-line setting may be a string ("ckls serve") or an argv array. */
export function fromSetting(value: unknown): ServerCommand | undefined {
  let argv: string[] = [];
  if (Array.isArray(value)) argv = value.filter((x): x is string => typeof x === 'string' && x.length > 0);
  else if (typeof value === 'string') argv = splitArgs(value);
  if (argv.length === 0) return undefined;
  return { command: argv[0], args: argv.slice(1), source: 'setting' };
}

/** Splits a command line on spaces, honouring single and double quotes (no shell is involved). */
export function splitArgs(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quote: string | null = null;
  let started = false;
  for (const ch of line.trim()) {
    if (quote) {
      if (ch === quote) quote = null;
      else cur += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      started = true;
    } else if (/\s/.test(ch)) {
      if (started || cur) out.push(cur);
      cur = '';
      started = false;
    } else {
      cur += ch;
    }
  }
  if (started || cur) out.push(cur);
  return out;
}

export function isExecutable(file: string): boolean {
  try {
    const st = fs.statSync(file);
    if (!st.isFile()) return false;
    if (process.platform === 'win32') return true;
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** `name` looked up on PATH the way a shell would (PATHEXT on Windows). */
export function which(name: string, env: NodeJS.ProcessEnv = process.env,
  exists: (f: string) => boolean = isExecutable): string | undefined {
  const dirs = (env.PATH ?? env.Path ?? '').split(path.delimiter).filter(Boolean);
  const exts = process.platform === 'win32' ? (env.PATHEXT ?? '.EXE;.CMD;.BAT').split(';') : [''];
  for (const d of dirs) {
    for (const e of exts) {
      const f = path.join(d, name + e);
      if (exists(f)) return f;
    }
  }
  return undefined;
}

/** True when `python -c "import ckls"` succeeds within the timeout. */
export function pythonHasCkls(python: string, timeoutMs = 15000): Promise<boolean> {
  return new Promise((resolve) => {
    execFile(python, ['-c', 'import ckls'], { timeout: timeoutMs }, (err) => resolve(!err));
  });
}

export interface FindOptions {
  setting: unknown;
  env?: NodeJS.ProcessEnv;
  exists?: (f: string) => boolean;
  /** The Python extension's active interpreter, when that extension is installed. */
  pythonInterpreter?: () => Promise<string | undefined>;
  hasCkls?: (python: string) => Promise<boolean>;
}

export interface FindResult {
  found?: ServerCommand;
  tried: string[];
}

export async function findServer(opts: FindOptions): Promise<FindResult> {
  const tried: string[] = [];
  const fromUser = fromSetting(opts.setting);
  if (fromUser) return { found: fromUser, tried };
  tried.push('the ckls.serverCommand setting (empty)');
  const onPath = which('ckls', opts.env ?? process.env, opts.exists ?? isExecutable);
  if (onPath) return { found: { command: onPath, args: [], source: 'path' }, tried };
  tried.push('`ckls` on PATH');
  if (opts.pythonInterpreter) {
    const py = await opts.pythonInterpreter().catch(() => undefined);
    if (py) {
      if (await (opts.hasCkls ?? pythonHasCkls)(py)) {
        return { found: { command: py, args: ['-m', 'ckls'], source: 'python-extension' }, tried };
      }
      tried.push(`${py} -m ckls (the Python extension's interpreter has no ckls package)`);
    } else {
      tried.push('the Python extension (no interpreter selected)');
    }
  }
  return { tried };
}

export function notFoundMessage(tried: string[]): string {
  return `ckls: cannot find the ckls language server (tried ${tried.join('; ')}). Install it with ` +
    `\`${INSTALL_HINT}\` into a Python environment and put its \`ckls\` on PATH, or set "ckls.serverCommand".`;
}
