// npm records in package-lock.json only the optional platform packages its registry serves.
// The registry of our build machines serves the linux ones only, and `npm ci` then refuses the
// lock file ("Missing: @biomejs/cli-darwin-arm64@ from lock file"). This adds the missing
// optional entries with their os/cpu, as a lock file written elsewhere has them, so `npm ci`
// skips them on this platform. Run after `npm install` changes the lock file.
import { readFileSync, writeFileSync } from 'node:fs';

const file = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(file, 'utf8'));
const OS = [
  'darwin',
  'linux',
  'win32',
  'freebsd',
  'android',
  'openbsd',
  'netbsd',
  'sunos',
  'aix',
  'openharmony',
];
const CPU = ['arm64', 'x64', 'ia32', 'arm', 'loong64', 'ppc64', 'riscv64', 's390x', 'mips64el', 'wasm32'];
let added = 0;
for (const [path, entry] of Object.entries(lock.packages)) {
  for (const [name, spec] of Object.entries(entry.optionalDependencies ?? {})) {
    const base = path === '' ? '' : `${path}/`;
    const candidates = [`${base}node_modules/${name}`, `node_modules/${name}`];
    if (candidates.some((c) => lock.packages[c])) continue;
    const parts = name.split(/[/-]/);
    const os = OS.filter((o) => parts.includes(o));
    const cpu = CPU.filter((c) => parts.includes(c));
    const stub = { version: spec.replace(/^[\^~=]/, ''), optional: true };
    if (os.length) stub.os = os;
    if (cpu.length) stub.cpu = cpu;
    if (parts.includes('musl')) stub.libc = ['musl'];
    else if (parts.includes('gnu') || parts.includes('gnueabihf')) stub.libc = ['glibc'];
    lock.packages[`node_modules/${name}`] = stub;
    added++;
  }
}
lock.packages = Object.fromEntries(
  Object.entries(lock.packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a.localeCompare(b))),
);
writeFileSync(file, `${JSON.stringify(lock, null, 2)}\n`);
process.stdout.write(`package-lock.json: ${added} optional platform entries added\n`);
