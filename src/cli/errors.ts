/** The CLI's own error: a message already worded for the user and an exit code; `main` prints it as is. */
export class CliError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}
