/**
 * Rotation policy, as client-go's certificate manager has it: the deadline at a random 70-90% of a
 * certificate's life, backoff after a failed attempt (2, 4, 8, 16, 32 s with 10% jitter, then every
 * 32 s), and the check that a certificate still fits its template.
 */
import { X509Certificate } from "node:crypto";
import type { CertPair } from "./store.js";
import type { Subject } from "./csr.js";

export const BACKOFF_STEPS_S = [2, 4, 8, 16, 32];
export const BACKOFF_CAP_S = 32;
/** At most this long waiting for one CSR during rotation. */
export const ROTATION_CSR_TIMEOUT_MS = 15 * 60_000;
/** Warn (log and Event) when a certificate that cannot rotate is this close to expiry. */
export const EXPIRY_WARNING_MS = 30 * 24 * 3_600_000;

/**
 * TSKUBELET_TEST_ROTATION_FRACTION (test-only, undocumented for operators): a fixed fraction of the
 * lifetime at which to rotate, so end-to-end tests need not wait for 70% of a 10-minute certificate.
 */
export function testRotationFraction(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const v = Number(env.TSKUBELET_TEST_ROTATION_FRACTION);
  return env.TSKUBELET_TEST_ROTATION_FRACTION !== undefined && v > 0 && v < 1 ? v : undefined;
}

/** NotBefore + lifetime × U(0.7, 0.9); `fraction` overrides the random part (tests). */
export function rotationDeadline(pair: Pick<CertPair, "notBefore" | "notAfter">, random: () => number, fraction?: number): number {
  const life = pair.notAfter - pair.notBefore;
  if (fraction !== undefined) return pair.notBefore + Math.floor(life * fraction);
  return pair.notBefore + Math.floor((life * (7 + 2 * random())) / 10);
}

/** The wait after `failures` consecutive failed attempts (1-based). */
export function backoffDelayMs(failures: number, random: () => number): number {
  const base = BACKOFF_STEPS_S[failures - 1];
  if (base === undefined) return BACKOFF_CAP_S * 1000;
  return Math.round(base * 1000 * (1 + 0.1 * random()));
}

/** Whether the certificate has the template's CN, all its orgs, DNS names and IPs (extra SANs are fine). */
export function satisfiesTemplate(cert: X509Certificate, t: Subject): boolean {
  const subject = cert.subject.split("\n");
  if (!subject.includes(`CN=${t.cn}`)) return false;
  for (const o of t.orgs) if (!subject.includes(`O=${o}`)) return false;
  const san = (cert.subjectAltName ?? "").split(", ");
  for (const d of t.dnsNames ?? []) if (!san.includes(`DNS:${d}`)) return false;
  for (const ip of t.ips ?? []) if (!san.includes(`IP Address:${ip}`)) return false;
  return true;
}

/** Seconds until NotAfter (truncated), +Inf with no certificate: the *_ttl_seconds gauges. */
export function ttlSeconds(pair: CertPair | undefined, now: number): number {
  return pair ? Math.trunc((pair.notAfter - now) / 1000) : Number.POSITIVE_INFINITY;
}

/** Tracks one certificate's deadline (drawn once per certificate) and the failure count. */
export class RotationSchedule {
  private deadlineFor = "";
  private deadline = 0;
  private failures = 0;

  constructor(
    private readonly random: () => number,
    private readonly fraction?: number,
  ) {}

  /** The rotation deadline of this certificate: the same value until the certificate changes. */
  deadlineOf(pair: CertPair): number {
    const fp = pair.cert.fingerprint256;
    if (fp !== this.deadlineFor) {
      this.deadlineFor = fp;
      this.deadline = rotationDeadline(pair, this.random, this.fraction);
    }
    return this.deadline;
  }

  /** Records a failure; resolves to the wait before the next attempt. */
  failed(): number {
    this.failures++;
    return backoffDelayMs(this.failures, this.random);
  }

  succeeded(): void {
    this.failures = 0;
  }

  get failureCount(): number {
    return this.failures;
  }
}
