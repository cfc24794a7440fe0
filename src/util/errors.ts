/** Errors with stable codes; messages name the file, field or socket involved. */
export class KubeletError extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "KubeletError";
  }
}

export class ConfigError extends KubeletError {
  constructor(message: string) {
    super("ConfigInvalid", message);
    this.name = "ConfigError";
  }
}

export class ManifestError extends KubeletError {
  constructor(
    readonly file: string,
    readonly field: string,
    readonly reason: string,
  ) {
    super("ManifestInvalid", `${file}: ${field}: ${reason}`);
    this.name = "ManifestError";
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
