// SPDX-License-Identifier: GPL-2.0-or-later
//
// berth Node.js buildpack: reads BUILD_DIR/package.json once for bin/compile
// and bin/release and prints what they need as `key<TAB>value` lines (values
// on one line). Exit 0 with `error<TAB>...` when package.json is not valid
// JSON, so the caller words the failure. Usage: node inspect.js BUILD_DIR
'use strict';

const fs = require('node:fs');
const path = require('node:path');

const dir = process.argv[2] || '.';
const file = path.join(dir, 'package.json');
const out = [];
const put = (k, v) => out.push(`${k}\t${String(v).replace(/\s+/g, ' ').trim()}`);

function where(text, pos) {
  const before = text.slice(0, pos);
  const line = before.split('\n').length;
  return `line ${line}, column ${pos - before.lastIndexOf('\n')}`;
}

// The semver module npm bundles: npm is <npm root>/bin/npm-cli.js, so the
// module is <npm root>/node_modules/semver (or wherever npm's own require
// finds it). Falls back to a small hand check.
function loadSemver(npmPath) {
  if (!npmPath) return null;
  let root;
  try {
    root = path.dirname(path.dirname(fs.realpathSync(npmPath)));
    return require(path.join(root, 'node_modules', 'semver'));
  } catch (e) {
    // Debian's npm has its modules unbundled (/usr/share/nodejs/semver):
    // resolve it the way npm itself does.
    try {
      return require('node:module').createRequire(path.join(root, 'package.json'))('semver');
    } catch (e2) {
      return null;
    }
  }
}

function npmVersion(npmPath) {
  try {
    const root = path.dirname(path.dirname(fs.realpathSync(npmPath)));
    return JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version || '';
  } catch (e) {
    return '';
  }
}

// Hand check of the common forms: `>=18`, `>18.1`, `<=20`, `18`, `18.x`,
// `^20.1`, `~20.1.2`, `20.1.2`, `=20`, ranges joined by spaces (all must hold)
// and `||` (one must hold). Returns true, false, or null (form not known).
function handSatisfies(version, range) {
  const v = version.replace(/^v/, '').split('.').map(Number);
  const cmp = (a, b) => {
    for (let i = 0; i < 3; i++) if ((a[i] || 0) !== (b[i] || 0)) return (a[i] || 0) < (b[i] || 0) ? -1 : 1;
    return 0;
  };
  const one = (c) => {
    if (c === '*' || c === 'x' || c === 'X') return true;
    const m = /^(>=|<=|>|<|=|\^|~)?v?(\d+)(?:\.(\d+|x|\*))?(?:\.(\d+|x|\*))?$/.exec(c);
    if (!m) return null;
    const op = m[1] || '';
    const parts = [m[2], m[3], m[4]].filter((p) => p !== undefined && p !== 'x' && p !== '*').map(Number);
    const want = [parts[0] || 0, parts[1] || 0, parts[2] || 0];
    const prefixEq = () => parts.every((p, i) => v[i] === p);
    switch (op) {
      case '>=': return cmp(v, want) >= 0;
      case '>': return parts.length < 3 ? !prefixEq() && cmp(v, want) > 0 : cmp(v, want) > 0;
      case '<=': return parts.length < 3 ? prefixEq() || cmp(v, want) < 0 : cmp(v, want) <= 0;
      case '<': return cmp(v, want) < 0;
      case '^': return v[0] === want[0] && cmp(v, want) >= 0;
      case '~': return v[0] === want[0] && (parts.length < 2 || v[1] === want[1]) && cmp(v, want) >= 0;
      default: return prefixEq();
    }
  };
  let known = true;
  const any = range.split('||').some((alt) => {
    const terms = alt.trim().split(/\s+/).filter(Boolean);
    if (terms.length === 0) return true;
    return terms.every((t) => {
      const r = one(t);
      if (r === null) known = false;
      return r === true;
    });
  });
  return known ? any : null;
}

let text;
try {
  text = fs.readFileSync(file, 'utf8');
} catch (e) {
  put('error', `cannot read package.json: ${e.message}`);
  process.stdout.write(out.join('\n') + '\n');
  process.exit(0);
}
let pkg;
try {
  pkg = JSON.parse(text);
  if (pkg === null || typeof pkg !== 'object' || Array.isArray(pkg)) throw new Error('the top level is not an object');
} catch (e) {
  const m = /at position (\d+)/.exec(e.message);
  put('error', m ? `${e.message} (${where(text, Number(m[1]))})` : e.message);
  process.stdout.write(out.join('\n') + '\n');
  process.exit(0);
}

const scripts = pkg.scripts && typeof pkg.scripts === 'object' ? pkg.scripts : {};
const count = (o) => (o && typeof o === 'object' ? Object.keys(o).length : 0);
const npmPath = process.env.BERTH_NPM || '';

put('node_version', process.version);
put('npm_version', npmVersion(npmPath));
put('deps', count(pkg.dependencies) + count(pkg.optionalDependencies));
put('dev_deps', count(pkg.devDependencies));
put('has_start', typeof scripts.start === 'string' && scripts.start.trim() !== '' ? 1 : 0);
put('build_script', typeof scripts['heroku-postbuild'] === 'string' ? 'heroku-postbuild'
  : typeof scripts.build === 'string' ? 'build' : '');

const range = pkg.engines && typeof pkg.engines.node === 'string' ? pkg.engines.node.trim() : '';
if (range) {
  put('engines_node', range);
  const semver = loadSemver(npmPath);
  let ok = null;
  if (semver) {
    ok = semver.validRange(range) ? semver.satisfies(process.version, range) : null;
  } else {
    ok = handSatisfies(process.version, range);
  }
  put('engines_ok', ok === null ? 'unknown' : ok ? 'yes' : 'no');
}
process.stdout.write(out.join('\n') + '\n');
