import pg from 'pg';
import type { Logger } from 'pino';
import type { TributaryConfig } from '../config/config-schema.ts';
import type { LeaderTerm } from '../log/nats/nats-leadership.ts';
import { type OpenedEventLog, openEventLog } from '../log/open-event-log.ts';
import { describeTarget } from '../source/postgres/postgres-errors.ts';
import { writeStatus } from './capture-status.ts';

/** What a standby shows (status file, API, dashboard) while it waits. */
export interface StandbyState {
  readonly since: string;
  /** Whether the slot is held by a walsender; null while the source does not answer. */
  readonly slotActive: boolean | null;
  /** The pid (on the database server) of the walsender holding the slot. */
  readonly activePid: number | null;
  /** NATS: the current leadership term, i.e. the active capture. */
  readonly leader: LeaderTerm | null;
  readonly lastError: string | null;
}

export interface StandbyOptions {
  readonly config: TributaryConfig;
  readonly logger: Logger;
  /** How often the slot is polled; the take-over happens within about this much of its release. */
  readonly pollMs?: number;
  readonly signal: AbortSignal;
  /** Told of each poll (the control plane shows it). */
  readonly onState?: (state: StandbyState) => void;
}

/**
 * `wal_sender_timeout` of the replication connection of a capture started with --standby (active
 * or not): a leader cut off from the database, or frozen, loses its walsender (and so the slot)
 * after this long without an answer; a live one reports its position at least every quarter of
 * it (PostgresSource), also while its appends wait and it reads nothing.
 */
export const STANDBY_WAL_SENDER_TIMEOUT_MS = 10_000;

/**
 * Longest pause between attempts to get the slot (reconnects) of a capture started with
 * --standby: one that saw the slot free but lost it to another standby keeps trying this often.
 */
export const STANDBY_RECONNECT_MAX_DELAY_MS = 1_000;

/**
 * `run --standby` (docs/nats.md, "Capture active/standby"): waits while another capture holds
 * the replication slot, and resolves once the slot is released (its walsender ended: the active
 * capture died, stopped, or was cut off and timed out by `wal_sender_timeout`) or does not exist
 * yet. The caller then starts capturing as usual: the slot itself is the lock (PostgreSQL streams
 * a slot to one walsender), and the leadership term it then takes fences the former leader's
 * appends. Returns false when `signal` aborted the wait.
 */
export async function waitAsStandby(options: StandbyOptions): Promise<boolean> {
  const { config, logger, signal } = options;
  const url = config.source.url!;
  const pollMs = options.pollMs ?? 250;
  const since = new Date().toISOString();
  let log: OpenedEventLog | undefined;
  let leader: LeaderTerm | null = null;
  let client: pg.Client | undefined;
  let warned = false;
  let polls = 0;
  try {
    while (!signal.aborted) {
      let state: StandbyState;
      try {
        if (!client) {
          const c = new pg.Client({ connectionString: url, application_name: 'tributary-standby' });
          c.on('error', () => undefined);
          await c.connect();
          client = c;
        }
        const rows = (
          await client.query<{ active: boolean; active_pid: number | null }>(
            'select active, active_pid from pg_replication_slots where slot_name = $1',
            [config.source.slot],
          )
        ).rows;
        // The leader as NATS knows it, every few polls (for status only: the slot decides).
        if (log?.leadership && polls % 8 === 0)
          leader = await log.leadership(`postgres:${config.source.slot}`);
        polls++;
        const row = rows[0];
        state = {
          since,
          slotActive: row ? row.active : false,
          activePid: row?.active_pid ?? null,
          leader,
          lastError: null,
        };
        if (!row?.active) {
          logger.info(
            { slot: config.source.slot, exists: row !== undefined },
            'standby: the replication slot is free; taking over',
          );
          return true;
        }
      } catch (error) {
        await client?.end().catch(() => undefined);
        client = undefined;
        if (!warned) logger.warn({ err: error }, 'standby: cannot read the slot state yet; retrying');
        warned = true;
        state = { since, slotActive: null, activePid: null, leader, lastError: (error as Error).message };
      }
      if (!log && config.log.url) log = await openEventLog(config, { readonly: true }).catch(() => undefined);
      options.onState?.(state);
      writeStandbyStatus(config, state);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, pollMs);
        signal.addEventListener(
          'abort',
          () => {
            clearTimeout(timer);
            resolve();
          },
          { once: true },
        );
      });
    }
    return false;
  } finally {
    await client?.end().catch(() => undefined);
    await log?.close().catch(() => undefined);
  }
}

function writeStandbyStatus(config: TributaryConfig, state: StandbyState): void {
  try {
    writeStatus(config.dataDir, {
      pid: process.pid,
      startedAt: state.since,
      updatedAt: new Date().toISOString(),
      source: describeTarget(config.source.url!),
      slot: config.source.slot,
      publication: config.source.publication,
      connected: false,
      confirmedLsn: '0/0',
      durableLsn: '0/0',
      serverLsn: null,
      lagBytes: null,
      retainedWalBytes: null,
      transactions: 0,
      events: 0,
      records: 0,
      recordsPerSecond: 0,
      reconnects: 0,
      role: 'standby',
      ...(state.leader ? { term: state.leader.term } : {}),
      leader: state.leader ? { holder: state.leader.holder, since: state.leader.since } : null,
    });
  } catch {
    // the status file is information only
  }
}
