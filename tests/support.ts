/**
 * What the benchmark borrows from the test suites: the stack controller, the typed HTTP client,
 * the ledger check and the span collector. This module is the only door from bench/ into
 * tests/: the benchmark imports these names from here and nothing else under tests/, so a
 * suite's files can change without reading bench/, and what bench/ relies on is listed in one
 * place.
 * @module
 */
export { type ServiceExit, type ServiceName, Stack, type StackBackend } from "./stack.ts";
export { type OrderView, stockLevels } from "./client.ts";
export { checkLedger, type Ledger, type LedgerScope } from "./ledger.ts";
export { type CollectedSpan, type SpanCollector, startSpanCollector } from "./span_collector.ts";
