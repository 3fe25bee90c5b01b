/**
 * The application log: winston behind a four-method interface. Metadata is a flat record of
 * primitives on purpose: there is no way to hand it a request body, a Buffer or an error object
 * whose fields might carry key material, plaintexts, PINs or tokens.
 *
 * The level is fixed when the logger is made, so a method below it is a no-op chosen once here:
 * winston formats a line (timestamp, JSON) before its transport drops it, and the request path
 * logs at debug and info on every call.
 */
import winston from 'winston';

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';
export type LogMeta = Readonly<Record<string, string | number | boolean | undefined>>;

export interface Logger {
  error(message: string, meta?: LogMeta): void;
  warn(message: string, meta?: LogMeta): void;
  info(message: string, meta?: LogMeta): void;
  debug(message: string, meta?: LogMeta): void;
  /** Whether lines at `level` are written (for callers that would do work just to build one). */
  enabled(level: LogLevel): boolean;
}

/** winston's (npm) order: a line is written when its rank is at most the logger's. */
const RANK: Readonly<Record<LogLevel, number>> = { error: 0, warn: 1, info: 2, debug: 3 };

const drop = (_message: string, _meta?: LogMeta): void => {};

export function createLogger(level: LogLevel, stream: NodeJS.WritableStream = process.stdout): Logger {
  const w = winston.createLogger({
    level,
    format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    transports: [new winston.transports.Stream({ stream })],
  });
  const max = RANK[level];
  const on = (l: LogLevel): boolean => RANK[l] <= max;
  return {
    error: (m, meta) => w.error(m, meta),
    warn: on('warn') ? (m, meta) => w.warn(m, meta) : drop,
    info: on('info') ? (m, meta) => w.info(m, meta) : drop,
    debug: on('debug') ? (m, meta) => w.debug(m, meta) : drop,
    enabled: on,
  };
}

/** For CLI commands whose stdout is their output: logs go to stderr. */
export function createCliLogger(level: LogLevel): Logger {
  return createLogger(level, process.stderr);
}
