import { z } from 'zod';
import { bool, positiveInt, type SettingSpec, tableList } from './setting-spec.ts';

/** The HTTP server, alerts, consumers, log level and sinks. */
export const RUNTIME_SETTINGS: readonly SettingSpec[] = [
  {
    path: 'server.port',
    env: 'TRIBUTARY_HTTP_PORT',
    flag: '--http-port',
    schema: z.coerce.number().int().min(0).max(65_535),
    default: 7070,
    description:
      'Port of the HTTP server (dashboard, REST API under /api, /metrics, /healthz, /readyz) started by `run` and `up`. 0 = no server. If the port is taken, `up` (and `run` on the default port) takes the next free one and prints it; `run` on a port given explicitly runs without the server and says so.',
  },
  {
    path: 'server.host',
    env: 'TRIBUTARY_HTTP_HOST',
    flag: '--http-host',
    schema: z.string().min(1),
    default: '127.0.0.1',
    description:
      'Address the HTTP server binds to. Beyond loopback (e.g. `0.0.0.0`), `server.token` is required and every endpoint asks for it.',
  },
  {
    path: 'server.token',
    env: 'TRIBUTARY_TOKEN',
    flag: '--token',
    fromFile: { flag: '--token-file', env: 'TRIBUTARY_TOKEN_FILE' },
    schema: z.string().min(16, 'at least 16 characters'),
    secret: true,
    description:
      'Bearer token of the HTTP server (`Authorization: Bearer <token>`): required for every mutating endpoint, and for all endpoints when the server is bound beyond loopback. Without it, mutating endpoints are refused.',
  },
  {
    path: 'server.allowedHosts',
    env: 'TRIBUTARY_HTTP_ALLOWED_HOSTS',
    schema: tableList,
    default: [],
    description:
      'Host names (without port) the HTTP server answers besides loopback ones (`localhost`, `127.0.0.1`, `[::1]`) while bound to loopback, e.g. the name a reverse proxy forwards. Any other `Host` or `Origin` is refused with 403 `HOST_NOT_ALLOWED`: the defence against DNS rebinding by web pages in a local browser (docs/security.md).',
    example: 'tributary.internal',
  },
  {
    path: 'alerts.webhookUrl',
    env: 'TRIBUTARY_ALERTS_WEBHOOK_URL',
    schema: z.url(),
    secret: true,
    description:
      'Webhook receiving alerts as Slack-compatible JSON (`{text, blocks}`): once when an alert fires, once when it resolves. Unset = alerts only on the dashboard and /api/alerts.',
    example: 'https://hooks.slack.com/services/T000/B000/XXXX',
  },
  {
    path: 'alerts.slotLagBytes',
    env: 'TRIBUTARY_ALERTS_SLOT_LAG_BYTES',
    schema: z.coerce.number().int().min(0),
    default: 1024 ** 3,
    description:
      'Alert when the replication slot lags the server by more than this many bytes of WAL. 0 = off.',
  },
  {
    path: 'alerts.consumerLagSeconds',
    env: 'TRIBUTARY_ALERTS_CONSUMER_LAG_SECONDS',
    schema: z.coerce.number().min(0),
    default: 300,
    description:
      'Alert when a consumer group is behind by more than this many seconds (age of its oldest unprocessed record). 0 = off.',
  },
  {
    path: 'alerts.crashLoop',
    env: 'TRIBUTARY_ALERTS_CRASH_LOOP',
    schema: bool,
    default: true,
    description: 'Alert while a consumer replica is crash-looping (restarted repeatedly by the supervisor).',
  },
  {
    path: 'alerts.disconnectedSeconds',
    env: 'TRIBUTARY_ALERTS_DISCONNECTED_SECONDS',
    schema: z.coerce.number().min(0),
    default: 60,
    description: 'Alert when capture has been disconnected from the source for this many seconds. 0 = off.',
  },
  {
    path: 'alerts.eventLoopStallMs',
    env: 'TRIBUTARY_ALERTS_EVENT_LOOP_STALL_MS',
    schema: z.coerce.number().int().min(0),
    default: 5000,
    description:
      'Alert (`event_loop_stall`, for a minute after it ends) when the pipeline process did not run for this long (milliseconds): CPU starvation, swapping, a stopped process. Its status and metrics were stale meanwhile. 0 = off.',
  },
  {
    path: 'alerts.intervalMs',
    env: 'TRIBUTARY_ALERTS_INTERVAL_MS',
    schema: positiveInt,
    default: 10_000,
    description: 'How often the alert rules are evaluated (milliseconds).',
  },
  {
    path: 'consumers.dir',
    env: 'TRIBUTARY_CONSUMERS_DIR',
    flag: '--consumers',
    schema: z.string().min(1),
    default: './consumers',
    description:
      'Folder of consumers run by `run` and `up`: each `<dir>/<name>/index.ts` (or `index.js`) is one consumer, run in its own supervised processes. A missing folder = no consumers.',
  },
  {
    path: 'consumers.heartbeatMs',
    env: 'TRIBUTARY_CONSUMERS_HEARTBEAT_MS',
    schema: positiveInt,
    default: 1000,
    description: 'How often each consumer replica reports to the supervisor (milliseconds).',
  },
  {
    path: 'consumers.niceness',
    env: 'TRIBUTARY_CONSUMERS_NICENESS',
    schema: z.coerce.number().int().min(0).max(19),
    default: 10,
    description:
      "OS scheduling niceness added to consumer replica processes (0-19; 0 = same priority as the capture). Above 0, on Linux, replicas also run in the SCHED_IDLE class (through `chrt`) and lower their session's autogroup: they only get the CPU time the capture leaves, so consumers are best effort, falling behind during bursts and catching up after, while the capture keeps its pace. A replica starved of CPU (waiting in the run queue) is not taken for hung. 0 turns all of this off.",
  },
  {
    path: 'consumers.yieldToCapture',
    env: 'TRIBUTARY_CONSUMERS_YIELD_TO_CAPTURE',
    schema: z.enum(['auto', 'always', 'never']),
    default: 'auto',
    description:
      "Whether consumer replicas stop reading while the capture catches up with its source (the server's WAL at least 1 MiB ahead of the stream, e.g. after downtime or a bulk load), and read again once it has: `auto` = only on a machine without a spare core (Linux: less than one core idle or running niced tasks over the last 0.5 s), `always`, or `never`. On two cores, five consumers reading during a catch-up cost it 9-25 % of its pace even at the lowest CPU priority (about a fifth in the median run), a few percent when held; they would fall behind anyway, catch up about as soon, and the capture frees the source's WAL sooner. A capture that starts behind holds them before its first append. Lag-based autoscaling waits meanwhile. Only for consumers sharing the capture's data directory.",
  },
  {
    path: 'consumers.heartbeatTimeoutMs',
    env: 'TRIBUTARY_CONSUMERS_HEARTBEAT_TIMEOUT_MS',
    schema: positiveInt,
    default: 15_000,
    description: 'A replica silent for this long (milliseconds) is killed and restarted.',
  },
  {
    path: 'consumers.hangTimeoutMs',
    env: 'TRIBUTARY_CONSUMERS_HANG_TIMEOUT_MS',
    schema: positiveInt,
    default: 60_000,
    description:
      'A replica with records in flight and no finished batch for this long (milliseconds), or that does not answer a revoke within it, is hung: killed and restarted.',
  },
  {
    path: 'consumers.startTimeoutMs',
    env: 'TRIBUTARY_CONSUMERS_START_TIMEOUT_MS',
    schema: positiveInt,
    default: 30_000,
    description:
      'A replica that is not ready (module loaded, target opened) within this long (milliseconds) is killed and restarted; time it spent waiting for a CPU (starved below the capture) does not count.',
  },
  {
    path: 'consumers.crashLoopRestarts',
    env: 'TRIBUTARY_CONSUMERS_CRASH_LOOP_RESTARTS',
    schema: positiveInt,
    default: 5,
    description:
      'Restarts within `consumers.crashLoopWindowMs` after which a consumer is marked `failed` (and an alert raised) instead of restarted again.',
  },
  {
    path: 'consumers.crashLoopWindowMs',
    env: 'TRIBUTARY_CONSUMERS_CRASH_LOOP_WINDOW_MS',
    schema: positiveInt,
    default: 60_000,
    description: 'Window of `consumers.crashLoopRestarts` (milliseconds).',
  },
  {
    path: 'consumers.failureThreshold',
    env: 'TRIBUTARY_CONSUMERS_FAILURE_THRESHOLD',
    schema: z.coerce.number().int().min(0),
    default: 10,
    description:
      'Consecutive dead letters (no record handled in between) after which a consumer is `failing`: an alert is raised, the last error shown in `tributary consumers`, the API and the dashboard, and (with `consumers.failureAction` `pause`) the consumer pauses before dead-lettering another record, so a handler that fails every record sends at most this many records per replica to the dead letters. 0 = off. A consumer overrides it with `failure: { maxConsecutiveDeadLetters }`.',
  },
  {
    path: 'consumers.failureAction',
    env: 'TRIBUTARY_CONSUMERS_FAILURE_ACTION',
    schema: z.enum(['pause', 'continue']),
    default: 'pause',
    description:
      'What a consumer does at `consumers.failureThreshold`: `pause` (keep the remaining records; `tributary consumers resume <name>` retries from the first one not dead-lettered) or `continue` (alert and go on dead-lettering). A consumer overrides it with `failure: { action }`.',
  },
  {
    path: 'consumers.offsetReset',
    env: 'TRIBUTARY_CONSUMERS_OFFSET_RESET',
    schema: z.enum(['fail', 'earliest', 'latest']),
    default: 'fail',
    description:
      "Where a consumer starts when its stored offset is beyond the end of the log (a transactional target kept from another data directory), like Kafka's `auto.offset.reset`: `fail` = the consumer is marked `failed` with an alert naming the offsets; `earliest` = from the oldest stored record; `latest` = from the end (only new records). A consumer overrides it with `offsetReset`.",
  },
  {
    path: 'consumers.backoffMaxMs',
    env: 'TRIBUTARY_CONSUMERS_BACKOFF_MAX_MS',
    schema: positiveInt,
    default: 30_000,
    description: 'Longest delay before restarting a crashed replica; the delay starts at 200 ms and doubles.',
  },
  {
    path: 'consumers.scaleUpLagSeconds',
    env: 'TRIBUTARY_CONSUMERS_SCALE_UP_LAG_SECONDS',
    schema: z.coerce.number().positive(),
    default: 10,
    description:
      'A consumer with `replicas: {min, max}` gets one more replica when its time lag stays above this many seconds for `consumers.scaleCooldownMs`.',
  },
  {
    path: 'consumers.scaleDownLagSeconds',
    env: 'TRIBUTARY_CONSUMERS_SCALE_DOWN_LAG_SECONDS',
    schema: z.coerce.number().min(0),
    default: 1,
    description:
      'One replica less when the time lag stays below this many seconds for `consumers.scaleCooldownMs`.',
  },
  {
    path: 'consumers.scaleCooldownMs',
    env: 'TRIBUTARY_CONSUMERS_SCALE_COOLDOWN_MS',
    schema: positiveInt,
    default: 30_000,
    description:
      'How long the lag must stay beyond a threshold, and the least time between two autoscaling steps (milliseconds).',
  },
  {
    path: 'consumers.logMaxBytes',
    env: 'TRIBUTARY_CONSUMERS_LOG_MAX_BYTES',
    schema: positiveInt,
    default: 10 * 1024 * 1024,
    description: 'Size at which a consumer log (`<dataDir>/logs/<name>.log`) is rotated.',
  },
  {
    path: 'consumers.logFiles',
    env: 'TRIBUTARY_CONSUMERS_LOG_FILES',
    schema: z.coerce.number().int().min(0).max(100),
    default: 5,
    description: 'Rotated consumer log files kept (`<name>.log.1` ... `<name>.log.<n>`).',
  },
  {
    path: 'logLevel',
    env: 'TRIBUTARY_LOG_LEVEL',
    flag: '--log-level',
    schema: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']),
    default: 'info',
    description: 'Log level of the structured (JSON) log on stderr.',
  },
  {
    path: 'sinks',
    env: 'TRIBUTARY_SINKS',
    schema: z
      .union([z.string(), z.record(z.string(), z.unknown())])
      .transform((v, ctx) => {
        if (typeof v !== 'string') return v;
        try {
          return JSON.parse(v) as Record<string, unknown>;
        } catch {
          ctx.addIssue({ code: 'custom', message: 'must be a JSON object of sinks by name' });
          return z.NEVER;
        }
      })
      .pipe(z.record(z.string(), z.unknown())),
    default: {},
    structured: true,
    description:
      'Built-in sinks by name: `{ "<name>": { "kind": "<kind>", "tables": [...], ...options } }`. Each runs as a supervised consumer group named after it. Kinds and options: docs/sinks.md.',
    example: '{"orders-view": {"kind": "table", "tables": ["public.orders"], "target": "sqlite:./views.db"}}',
  },
];
