import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The parts of a V8 `.cpuprofile` (as written by `node --cpu-prof`) that a self-time summary needs. */
interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  samples: number[];
  timeDeltas: number[];
}

export interface SelfTime {
  readonly name: string;
  readonly where: string;
  readonly ms: number;
  readonly share: number;
}

export interface ProfileSummary {
  readonly file: string;
  readonly totalMs: number;
  readonly top: readonly SelfTime[];
  /** Self time grouped by where the code lives (our folders, libraries, GC, idle...). */
  readonly areas: readonly SelfTime[];
}

function shortUrl(url: string): string {
  const at = url.indexOf('/src/');
  if (at >= 0) return url.slice(at + 1);
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) return url.slice(nm + 14);
  return url.replace(/^file:\/\//, '');
}

function area(functionName: string, url: string): string {
  if (!url) {
    if (functionName.startsWith('(')) return functionName; // (garbage collector), (idle), (program)
    return 'native / V8 builtins';
  }
  const short = shortUrl(url);
  const ours = /^src\/([^/]+(?:\/[^/]+)?)\//.exec(short);
  if (ours) return ours[1]!;
  if (url.includes('/node_modules/'))
    return short.split('/')[0]!.startsWith('@')
      ? short.split('/').slice(0, 2).join('/')
      : short.split('/')[0]!;
  if (url.startsWith('node:')) return 'node internals';
  return short;
}

function rank(map: Map<string, { name: string; where: string; ms: number }>, totalMs: number, n: number) {
  return [...map.values()]
    .sort((a, b) => b.ms - a.ms)
    .slice(0, n)
    .map((e) => ({ ...e, share: e.ms / totalMs }));
}

/**
 * Self time per function and per area of the main thread's profile in `dir`. Files are named
 * CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile; tsx's loader worker writes one too (thread ≠ 0).
 */
export function summariseProfile(dir: string, top = 25): ProfileSummary | null {
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  const file = files.find((f) => /\.\d+\.0\.\d+\.cpuprofile$/.test(f)) ?? files[0];
  if (!file) return null;
  const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const functions = new Map<string, { name: string; where: string; ms: number }>();
  const areas = new Map<string, { name: string; where: string; ms: number }>();
  let totalMs = 0;
  profile.samples.forEach((id, i) => {
    const frame = byId.get(id);
    const ms = (profile.timeDeltas[i] ?? 0) / 1000;
    if (!frame) return;
    totalMs += ms;
    const name = frame.functionName || '(anonymous)';
    const where = frame.url ? `${shortUrl(frame.url)}:${frame.lineNumber + 1}` : '';
    const key = `${name}\0${where}`;
    const f = functions.get(key) ?? { name, where, ms: 0 };
    f.ms += ms;
    functions.set(key, f);
    const a = area(frame.functionName, frame.url);
    const g = areas.get(a) ?? { name: a, where: '', ms: 0 };
    g.ms += ms;
    areas.set(a, g);
  });
  return { file, totalMs, top: rank(functions, totalMs, top), areas: rank(areas, totalMs, 20) };
}

export function formatProfile(summary: ProfileSummary): string {
  const line = (e: SelfTime) =>
    `  ${(e.share * 100).toFixed(1).padStart(5)}%  ${e.ms.toFixed(0).padStart(7)} ms  ${e.name}${e.where ? `  ${e.where}` : ''}`;
  return [
    `CPU profile ${summary.file}: ${(summary.totalMs / 1000).toFixed(1)} s sampled`,
    'self time by area:',
    ...summary.areas.map(line),
    'top functions by self time:',
    ...summary.top.map(line),
  ].join('\n');
}
