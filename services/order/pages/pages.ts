/**
 * The pages' files: the student page at `/`, the kitchen board at `/board`, and their scripts
 * and styles under `/pages/`. They are imported as text, so they are part of the module graph:
 * a compiled binary carries them, and the service needs no permission to read files.
 * @module
 */
import type { Route } from "@campus/shared/http";
import studentHtml from "./student.html" with { type: "text" };
import studentJs from "./student.js" with { type: "text" };
import boardHtml from "./board.html" with { type: "text" };
import boardJs from "./board.js" with { type: "text" };
import liveJs from "./live.js" with { type: "text" };
import sessionJs from "./session.js" with { type: "text" };
import styleCss from "./style.css" with { type: "text" };

const HTML = "text/html; charset=utf-8";
const JS = "text/javascript; charset=utf-8";
const CSS = "text/css; charset=utf-8";

/** The files under `/pages/`, by name. */
const ASSETS: Record<string, { body: string; type: string }> = {
  "student.js": { body: studentJs, type: JS },
  "board.js": { body: boardJs, type: JS },
  "live.js": { body: liveJs, type: JS },
  "session.js": { body: sessionJs, type: JS },
  "style.css": { body: styleCss, type: CSS },
};

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
    { method: "GET", path: "/", access: "public", handler: () => file(studentHtml, HTML) },
    { method: "GET", path: "/board", access: "public", handler: () => file(boardHtml, HTML) },
    {
      method: "GET",
      path: "/pages/:name",
      access: "public",
      handler: (_req, { name }) => {
        const asset = ASSETS[name ?? ""];
        if (!asset) {
          return new Response(`No such file: /pages/${name}\n`, {
            status: 404,
            headers: { "content-type": "text/plain; charset=utf-8" },
          });
        }
        return file(asset.body, asset.type);
      },
    },
  ];
}

function file(body: string, type: string): Response {
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
