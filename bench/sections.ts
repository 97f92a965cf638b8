/**
 * Sections of `bench/BASELINE.md` that comparison runs own: each run rewrites only its own
 * `## Heading` and what follows it up to the next `## `, and leaves the rest as it was.
 * @module
 */

/** `report` with the section starting at `heading` replaced by `section`, or added at the end. */
export function withSection(report: string, heading: string, section: string): string {
  const start = report.indexOf(heading);
  if (start < 0) return `${report.trimEnd()}\n\n${section.trim()}\n`;
  const next = report.indexOf("\n## ", start + heading.length);
  const after = next < 0 ? "" : report.slice(next);
  return `${report.slice(0, start)}${section.trim()}\n${after}`;
}

/** The section of `report` starting at `heading`, or "" when it has none. */
export function sectionOf(report: string, heading: string): string {
  const start = report.indexOf(heading);
  if (start < 0) return "";
  const next = report.indexOf("\n## ", start + heading.length);
  return report.slice(start, next < 0 ? undefined : next);
}

/** `report` with every section of `headings` that `previous` has carried over from it. */
export function keepSections(report: string, previous: string, headings: string[]): string {
  return headings.reduce((kept, heading) => {
    const section = sectionOf(previous, heading);
    return section ? withSection(kept, heading, section) : kept;
  }, report);
}
