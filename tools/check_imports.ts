/**
 * `deno task test:imports`: fails when the project's own modules import each other in a cycle.
 * A cycle hides which module is the lower layer; each one found is printed as the files that
 * form it. The graph is Deno's own (`deno info --json`), over every module of the workspace,
 * type-only imports included.
 * @module
 */
// deno-lint-ignore-file no-console -- a terminal program: its output is the point

import { relative } from "node:path";

const root = new URL("../", import.meta.url);
const FOLDERS = ["shared", "services", "testing", "tools", "tests", "bench"];

/** Every TypeScript module under the project's source folders, as absolute paths. */
async function modules(): Promise<string[]> {
  const found: string[] = [];
  async function walk(dir: URL): Promise<void> {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.isDirectory) await walk(new URL(`${entry.name}/`, dir));
      else if (entry.name.endsWith(".ts")) found.push(new URL(entry.name, dir).pathname);
    }
  }
  for (const folder of FOLDERS) await walk(new URL(`${folder}/`, root));
  return found.sort();
}

interface InfoModule {
  specifier: string;
  dependencies?: { code?: { specifier: string }; type?: { specifier: string } }[];
}

/** The import edges between the project's files, from one `deno info` over all of them. */
async function importGraph(files: string[]): Promise<Map<string, Set<string>>> {
  // One root that imports every module gives one graph in one call; `deno info` only reads it.
  const entry = await Deno.makeTempFile({ dir: root.pathname, prefix: ".imports-", suffix: ".ts" });
  try {
    await Deno.writeTextFile(entry, files.map((f) => `import "${f}";\n`).join(""));
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", entry],
      cwd: root.pathname,
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (code !== 0) throw new Error(`deno info failed: ${new TextDecoder().decode(stderr)}`);
    const { modules } = JSON.parse(new TextDecoder().decode(stdout)) as { modules: InfoModule[] };
    const entryUrl = `file://${entry}`;
    const graph = new Map<string, Set<string>>();
    for (const module of modules) {
      if (!module.specifier.startsWith("file://") || module.specifier === entryUrl) continue;
      const targets = new Set<string>();
      for (const dependency of module.dependencies ?? []) {
        for (const target of [dependency.code?.specifier, dependency.type?.specifier]) {
          if (target?.startsWith("file://")) targets.add(target);
        }
      }
      graph.set(module.specifier, targets);
    }
    return graph;
  } finally {
    await Deno.remove(entry);
  }
}

/** The strongly connected components with more than one module, or a module importing itself. */
export function cycles(graph: Map<string, Set<string>>): string[][] {
  // Tarjan's algorithm, iterative so a deep graph cannot overflow the stack.
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const found: string[][] = [];
  for (const start of graph.keys()) {
    if (index.has(start)) continue;
    const work: { node: string; edges: Iterator<string> }[] = [];
    const visit = (node: string) => {
      index.set(node, next);
      low.set(node, next++);
      stack.push(node);
      onStack.add(node);
      work.push({ node, edges: (graph.get(node) ?? new Set()).values() });
    };
    visit(start);
    while (work.length > 0) {
      const frame = work[work.length - 1];
      const step = frame.edges.next();
      if (!step.done) {
        const target = step.value;
        if (!index.has(target)) visit(target);
        else if (onStack.has(target)) {
          low.set(frame.node, Math.min(low.get(frame.node)!, index.get(target)!));
        }
        continue;
      }
      work.pop();
      if (work.length > 0) {
        const parent = work[work.length - 1].node;
        low.set(parent, Math.min(low.get(parent)!, low.get(frame.node)!));
      }
      if (low.get(frame.node) !== index.get(frame.node)) continue;
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        component.push(member);
      } while (member !== frame.node);
      if (component.length > 1 || graph.get(frame.node)?.has(frame.node)) {
        found.push(component.sort());
      }
    }
  }
  return found;
}

if (import.meta.main) {
  const files = await modules();
  const found = cycles(await importGraph(files));
  const name = (url: string) => relative(root.pathname, new URL(url).pathname);
  if (found.length === 0) {
    console.log(`import graph: ${files.length} modules, no cycles`);
  } else {
    for (const component of found) {
      console.error(`import cycle among: ${component.map(name).join(", ")}`);
    }
    console.error(`${found.length} import cycle(s): a module must not depend on itself`);
    Deno.exit(1);
  }
}
