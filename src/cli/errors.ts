/** The CLI's own error: a message already worded for the user and an exit code; `main` prints it as is. */
export class CliError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}

/** The API could not be reached at all (refused, unknown host, reset, no answer): callers may fall back. */
export class ApiUnreachableError extends CliError {}
