/**
 * The pages' files themselves: the student page, the kitchen board, and their scripts and
 * styles, imported as text so that they are part of the module graph (a compiled binary carries
 * them, and the service needs no permission to read files). pages.ts loads this module with the
 * first page asked for.
 * @module
 */
import studentHtml from "./student.html" with { type: "text" };
import studentJs from "./student.js" with { type: "text" };
import boardHtml from "./board.html" with { type: "text" };
import boardJs from "./board.js" with { type: "text" };
import liveJs from "./live.js" with { type: "text" };
import sessionJs from "./session.js" with { type: "text" };
import styleCss from "./style.css" with { type: "text" };

/** One file of the pages: its text and its `content-type`. */
export interface PageFile {
  /** The file's text. */
  body: string;
  /** Its `content-type`. */
  type: string;
}

const HTML = "text/html; charset=utf-8";
const JS = "text/javascript; charset=utf-8";
const CSS = "text/css; charset=utf-8";

/** The student page, served at `/`. */
export const STUDENT_PAGE: PageFile = { body: studentHtml, type: HTML };

/** The kitchen board, served at `/board`. */
export const BOARD_PAGE: PageFile = { body: boardHtml, type: HTML };

/** The files under `/pages/`, by name. */
export const ASSETS: Readonly<Record<string, PageFile>> = {
  "student.js": { body: studentJs, type: JS },
  "board.js": { body: boardJs, type: JS },
  "live.js": { body: liveJs, type: JS },
  "session.js": { body: sessionJs, type: JS },
  "style.css": { body: styleCss, type: CSS },
};
