// Runs the graphql-http package's server audits (GraphQL over HTTP conformance) against a
// running server. Usage: node graphql_http_audit.mjs URL TOKEN. Prints one JSON line.
import { auditServer } from "graphql-http";

const [url, token] = process.argv.slice(2);
const fetchFn = (input, init = {}) => {
  const headers = new Headers(init.headers || {});
  headers.set("authorization", `Bearer ${token}`);
  return fetch(input, { ...init, headers });
};
const results = await auditServer({ url, fetchFn });
const summary = { ok: 0, notice: 0, warn: 0, error: 0, problems: [] };
for (const result of results) {
  summary[result.status] += 1;
  if (result.status !== "ok") {
    summary.problems.push({ status: result.status, name: result.name, reason: result.reason });
  }
}
console.log(JSON.stringify(summary));
