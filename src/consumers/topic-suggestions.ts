/**
 * Names close to a mistyped one, for messages such as "topic x does not exist; topics: ...".
 * Closest first by edit distance (insertions, deletions, substitutions), then by name.
 */
export function closestNames(wanted: string, names: readonly string[], limit = 5): string[] {
  return [...names]
    .map((name) => ({ name, distance: editDistance(wanted, name) }))
    .sort((a, b) => a.distance - b.distance || a.name.localeCompare(b.name))
    .slice(0, limit)
    .map((n) => n.name);
}

/** Levenshtein distance, one row at a time (names are short). */
export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min(previous[j]! + 1, current[j - 1]! + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length]!;
}

/** One warning per subscribed topic missing from the log, naming the closest existing topics. */
export function missingTopicWarnings(subscribed: readonly string[], existing: readonly string[]): string[] {
  const have = new Set(existing);
  return subscribed
    .filter((t) => !have.has(t))
    .map((t) => {
      const close = closestNames(t, existing);
      return `topic ${t} does not exist: nothing to read from it. ${close.length > 0 ? `Existing topics, closest first: ${close.join(', ')}${existing.length > close.length ? ', …' : ''}` : 'The log has no topics yet'} (\`tributary topics\` lists them; a table's topic appears with its first change or snapshot)`;
    });
}
