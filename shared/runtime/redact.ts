/**
 * Hiding secrets from logs and error bodies: passwords in URLs (`amqp://app:***@host`), bearer
 * tokens, `?ticket=` values and JWTs anywhere in a text, and the configuration's own secrets
 * wherever they turn up, since a driver's message may quote them in any shape.
 * @module
 */

/** What a hidden secret is replaced with. */
export const MASK = "***";

/**
 * Secrets shorter than this are not searched for in free text: masking every "pw" would mangle
 * the logs. URL passwords of any length are still masked by their place in the URL.
 */
const MIN_SECRET_LENGTH = 4;

/**
 * In one pass: the password of a URL (up to the last `@` of the authority, as URL parsers read
 * it); a bearer token; a `ticket=` or `token=` parameter; a JWT (three base64url parts, the first
 * two JSON objects, so starting with `eyJ`).
 */
const PATTERN = new RegExp(
  [
    String.raw`(?<url>\b[a-z][a-z0-9+.-]*:\/\/[^\s:@/?#"'<>]*):[^\s/?#"'<>]*@`,
    String.raw`(?<bearer>\bBearer\s+)[^\s"',;]+`,
    String.raw`(?<param>[?&;\s"']?(?:ticket|token|access_token)=)[^&\s"';]+`,
    String.raw`\beyJ[\w-]*\.eyJ[\w-]*\.[\w-]*`,
  ].join("|"),
  "gi",
);

/**
 * `text` with every password in a URL, bearer token, `ticket=`/`token=` value and JWT masked.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { redactText } from "./redact.ts";
 *
 * assert.equal(
 *   redactText("connect to amqp://app:s3cret@rabbit:5672 failed"),
 *   "connect to amqp://app:***@rabbit:5672 failed",
 * );
 * ```
 */
export function redactText(text: string): string {
  if (!text.includes("://") && !/bearer|ticket=|token=|eyJ/i.test(text)) return text;
  return text.replace(PATTERN, (_match, ...args) => {
    const groups = args.at(-1) as Record<string, string | undefined>;
    if (groups.url !== undefined) return `${groups.url}:${MASK}@`;
    if (groups.bearer !== undefined) return `${groups.bearer}${MASK}`;
    if (groups.param !== undefined) return `${groups.param}${MASK}`;
    return MASK;
  });
}

/**
 * `url` with its password masked (`postgres://campus:***@db:5432/order`), for logs and errors.
 * A URL that does not parse is left out whole rather than risk showing a secret; a list of
 * URLs separated by commas (`AMQP_URL`) is masked URL by URL.
 */
export function redactUrl(url: string): string {
  return url.split(",").map((part) => {
    const trimmed = part.trim();
    try {
      const parsed = new URL(trimmed);
      if (parsed.password) parsed.password = MASK;
      // Drops the trailing slash URL adds to `amqp://host:5672`, so the text reads as written.
      const shown = parsed.toString();
      return trimmed.endsWith("/") || !shown.endsWith("/") ? shown : shown.slice(0, -1);
    } catch {
      return "(unreadable URL)";
    }
  }).join(",");
}

/**
 * The secrets in a configuration, as they may appear in a text: the password of each of `urls`
 * (as written and decoded), and each of `values` whole (e.g. a signing key), each also as it
 * reads inside a JSON string. Empty and very short ones are left out (see
 * {@linkcode redactSecrets}).
 */
export function secretsOf(
  urls: readonly (string | undefined)[],
  values: readonly (string | undefined)[] = [],
): string[] {
  const found = new Set<string>();
  const add = (secret: string) => {
    if (secret.length < MIN_SECRET_LENGTH) return;
    found.add(secret);
    found.add(JSON.stringify(secret).slice(1, -1));
  };
  for (const list of urls) {
    for (const url of (list ?? "").split(",")) {
      const password = passwordOf(url.trim());
      if (!password) continue;
      add(password);
      try {
        add(decodeURIComponent(password));
      } catch {
        // not percent-encoded text: the form as written is the one a message would quote
      }
    }
  }
  for (const value of values) if (value) add(value);
  // Longest first, so a secret containing another is masked whole.
  return [...found].sort((a, b) => b.length - a.length);
}

/**
 * `text` after {@linkcode redactText}, with every one of `secrets` masked wherever it occurs:
 * the last line of defence for a message that quotes a secret outside of a URL.
 */
export function redactSecrets(text: string, secrets: readonly string[]): string {
  let out = redactText(text);
  for (const secret of secrets) {
    if (out.includes(secret)) out = out.replaceAll(secret, MASK);
  }
  return out;
}

function passwordOf(url: string): string | undefined {
  try {
    return new URL(url).password || undefined;
  } catch {
    // Unparseable: take what sits between the user's colon and the last `@` of the authority.
    return /^[a-z][a-z0-9+.-]*:\/\/[^:@/]*:([^/]*)@/i.exec(url)?.[1];
  }
}

/**
 * Text of an unknown thrown value, for logs and error bodies, with any password in a URL and
 * any token it quotes masked (see {@linkcode redactText}).
 */
export function errorText(err: unknown): string {
  return redactText(err instanceof Error ? err.message : String(err));
}
