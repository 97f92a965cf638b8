/**
 * The routes of the pages: the student page at `/`, the kitchen board at `/board`, and their
 * scripts and styles under `/pages/`. The files themselves (page_files.ts) load with the first
 * page asked for, so a replica no browser visits does not hold them.
 * @module
 */
import type { Route } from "@campus/shared/http";
import type { PageFile } from "./page_files.ts";

let files: Promise<typeof import("./page_files.ts")> | undefined;
/** The pages' files, loaded once. */
const pageFiles = () => files ??= import("./page_files.ts");

/**
 * The pages' Content-Security-Policy: their own scripts, styles and streams only, no inline
 * script or style, no plugins, and no framing by another site (clickjacking).
 */
export const CONTENT_SECURITY_POLICY: string = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "object-src 'none'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

/**
 * The routes that serve the pages and their files. They are open even with authentication on:
 * they hold no data (everything shown comes through routes that check the token), and a page
 * must load to let its user sign in.
 */
export function pageRoutes(): Route[] {
  return [
    {
      method: "GET",
      path: "/",
      access: "public",
      handler: async () => file((await pageFiles()).STUDENT_PAGE),
    },
    {
      method: "GET",
      path: "/board",
      access: "public",
      handler: async () => file((await pageFiles()).BOARD_PAGE),
    },
    {
      method: "GET",
      path: "/pages/:name",
      access: "public",
      handler: async (_req, { name = "" }) => {
        const { ASSETS } = await pageFiles();
        const asset = Object.hasOwn(ASSETS, name) ? ASSETS[name] : undefined;
        if (!asset) {
          return new Response(`No such file: /pages/${name}\n`, {
            status: 404,
            headers: { "content-type": "text/plain; charset=utf-8" },
          });
        }
        return file(asset);
      },
    },
  ];
}

function file({ body, type }: PageFile): Response {
  return new Response(body, {
    headers: {
      "content-type": type,
      // Small files that change with each release: the browser asks again, cheaply.
      "cache-control": "no-cache",
      "x-content-type-options": "nosniff",
      "content-security-policy": CONTENT_SECURITY_POLICY,
      // For browsers that predate frame-ancestors.
      "x-frame-options": "DENY",
      // A page's URL (and the student id in its stream's query) never leaves in a Referer.
      "referrer-policy": "no-referrer",
    },
  });
}
