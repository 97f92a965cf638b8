/**
 * `deno task token --role student|staff --sub ID [--ttl 1h]` prints a token signed with
 * `AUTH_SECRET` (from the environment) for development, tests and operators: send it as
 * `Authorization: Bearer <token>`, paste it into a page, or open a page with `#token=<token>`.
 * Reads `AUTH_SECRET` and nothing else.
 * @module
 */
// deno-lint-ignore-file no-console -- a terminal program: its output is the point
import { parseArgs } from "node:util";
import { type Role, ROLES, signToken } from "@campus/shared/auth";
import { loadAuthSecret } from "@campus/shared/config";

const USAGE = "usage: deno task token --role student|staff --sub ID [--ttl 1h]";

/** Longest lifetime a token may be given: a year. */
const MAX_TTL_SECONDS = 365 * 24 * 3600;

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** Seconds in a lifetime such as `90s`, `15m`, `1h`, `7d` or `3600`; throws `RangeError`. */
export function parseTtl(text: string): number {
  const match = /^(\d+)\s*([smhd]?)$/.exec(text.trim());
  const seconds = match ? Number(match[1]) * UNITS[match[2] || "s"] : NaN;
  if (!(seconds > 0 && seconds <= MAX_TTL_SECONDS)) {
    throw new RangeError(
      `--ttl must be a lifetime like 90s, 15m, 1h or 7d, at most 365d; got "${text}"`,
    );
  }
  return seconds;
}

/** What the command was asked for, checked; throws `TypeError` or `RangeError` naming the flag. */
export function tokenRequest(args: string[]): { role: Role; sub: string; ttlSeconds: number } {
  const { values, positionals } = parseArgs({
    args,
    options: {
      role: { type: "string" },
      sub: { type: "string" },
      ttl: { type: "string", default: "1h" },
    },
    strict: true,
    allowPositionals: true,
  });
  if (positionals.length > 0) throw new TypeError(`unexpected argument "${positionals[0]}"`);
  if (!ROLES.includes(values.role as Role)) {
    const got = values.role === undefined ? "none" : `"${values.role}"`;
    throw new TypeError(`--role must be ${ROLES.join(" or ")}; got ${got}`);
  }
  const sub = values.sub?.trim();
  if (!sub) throw new TypeError("--sub is required: the student id or the staff member's name");
  return { role: values.role as Role, sub, ttlSeconds: parseTtl(values.ttl) };
}

if (import.meta.main) {
  try {
    const request = tokenRequest(Deno.args);
    const secret = loadAuthSecret();
    if (!secret) {
      throw new Error(
        "AUTH_SECRET is not set: set it to the secret the services use " +
          "(e.g. export AUTH_SECRET=$(openssl rand -base64 32))",
      );
    }
    console.log(await signToken(secret, request));
  } catch (err) {
    console.error(`${(err as Error).message}\n${USAGE}`);
    Deno.exit(2);
  }
}
