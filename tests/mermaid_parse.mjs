// Parses mermaid text on stdin with the mermaid package (and jsdom for its DOM),
// both resolved from the node_modules folder named by ROUTILUX_MERMAID_DIR.
// Used by tests/test_issue_13_cli_graph.py only when that variable is set.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const require = createRequire(process.env.ROUTILUX_MERMAID_DIR + '/');
const load = (name) => import(pathToFileURL(require.resolve(name)).href);
const { JSDOM } = await load('jsdom');
const dom = new JSDOM('<!doctype html><html><body></body></html>');
globalThis.window = dom.window;
globalThis.document = dom.window.document;
const mermaid = (await load('mermaid')).default;
try {
  await mermaid.parse(readFileSync(0, 'utf8'));
  console.log('parsed');
} catch (error) {
  console.log(`error: ${error.message}`);
  process.exit(1);
}
