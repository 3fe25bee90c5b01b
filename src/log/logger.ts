/**
 * The application log: winston behind a four-method interface. Metadata is a flat record of
 * primitives on purpose: there is no way to hand it a request body, a Buffer or an error object
 * whose fields might carry key material, plaintexts, PINs or tokens.
 */
import winston from 'winston';

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';
export type LogMeta = Readonly<Record<string, string | number | boolean | undefined>>;

export interface Logger {
  error(message: string, meta?: LogMeta): void;
  warn(message: string, meta?: LogMeta): void;
  info(message: string, meta?: LogMeta): void;
  debug(message: string, meta?: LogMeta): void;
}

export function createLogger(level: LogLevel, stream: NodeJS.WritableStream = process.stdout): Logger {
  const w = winston.createLogger({
    level,
    format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    transports: [new winston.transports.Stream({ stream })],
  });
  return {
    error: (m, meta) => w.error(m, meta),
    warn: (m, meta) => w.warn(m, meta),
    info: (m, meta) => w.info(m, meta),
    debug: (m, meta) => w.debug(m, meta),
  };
}

/** For CLI commands whose stdout is their output: logs go to stderr. */
export function createCliLogger(level: LogLevel): Logger {
  return createLogger(level, process.stderr);
}
