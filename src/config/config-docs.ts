import { DEFAULT_CONFIG_FILE } from './config-loader.ts';
import { SETTINGS } from './config-schema.ts';

/** docs/configuration.md, generated from the settings table so the two cannot drift apart. */
export function renderConfigDocs(): string {
  const rows = SETTINGS.map((s) => {
    const def = s.default === undefined ? '—' : `\`${JSON.stringify(s.default)}\``;
    const example = s.example ? ` Example: \`${s.example}\`.` : '';
    const env = [s.env, s.fromFile?.env].filter(Boolean).map((e) => `\`${e}\``);
    const flag = [s.flag, s.fromFile?.flag].filter(Boolean).map((f) => `\`${f}\``);
    return `| \`${s.path}\` | ${env.join(', ') || '—'} | ${flag.join(', ') || '—'} | ${def} | ${s.description.replaceAll('|', '\\|')}${example} |`;
  });
  return [
    '# Configuration',
    '',
    '<!-- Generated from src/config/config-schema.ts by `npm run docs`; do not edit by hand. -->',
    '',
    'Every setting can be given in a JSON config file, in an environment variable, or as a flag.',
    `Later sources win: defaults < config file (\`--config <file>\`, else \`./${DEFAULT_CONFIG_FILE}\` if present) < environment < flags.`,
    'Invalid values stop the program with a message naming the setting, where it came from, and the allowed values.',
    '',
    '| Setting (file path) | Environment | Flag | Default | Description |',
    '| --- | --- | --- | --- | --- |',
    ...rows,
    '',
    'Example `tributary.config.json`:',
    '',
    '```json',
    JSON.stringify(
      {
        source: {
          url: 'postgres://tributary:secret@db:5432/shop',
          slot: 'shop',
          tables: ['public.orders', 'public.order_items'],
        },
        dataDir: '/var/lib/tributary',
        topicPrefix: 'shop',
        log: { partitions: 4, retention: { maxAgeHours: 168 } },
      },
      null,
      2,
    ),
    '```',
    '',
  ].join('\n');
}
