// Renders GraphiQL with an example that runs as is once a token is pasted. A file of its
// own, not an inline script: the page's Content-Security-Policy allows scripts from this
// origin only.
//
// Props are those of graphiql 3.8.3 (@graphiql/react 0.28). It has no `defaultVariables`,
// and the variables of `defaultTabs` never reach the editor (context.tsx takes the initial
// variables from the `variables` prop or storage only). So a first visit, with no tabs
// stored yet, gets the example's variables through `variables`; later visits keep the
// user's own.
(function () {
  "use strict";
  const query = `# Paste your API token after "Bearer " in the Headers tab below, then run (Ctrl+Enter).
# First: which attributes can I target? Then the project's segments and where they are used.
query Start($project: String!) {
  attributes(projectKey: $project, first: 20) {
    totalCount
    nodes {
      path
      profiles
      types { jsonType profiles }
      topValues(first: 3) { value profiles }
      usedBySegments
      definition { type description allowedValues }
    }
  }
  segments(projectKey: $project, first: 10) {
    totalCount
    nodes {
      key
      name
      tags
      usage { usageCount usedInFlags { flag { key } environment { key } ruleCount } }
    }
  }
}
`;
  const headers = JSON.stringify({ Authorization: "Bearer " }, null, 2);
  const variables = JSON.stringify({ project: "demo" }, null, 2);
  let firstVisit = true;
  try {
    firstVisit = window.localStorage.getItem("graphiql:tabState") === null;
  } catch (_) {
    // No storage (a privacy mode): every visit is a first one.
  }
  const fetcher = GraphiQL.createFetcher({ url: window.location.pathname });
  const storage = headerlessHistory();
  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(GraphiQL, {
      fetcher,
      storage,
      defaultQuery: query,
      ...(firstVisit ? { variables } : {}),
      defaultHeaders: headers,
      isHeadersEditorEnabled: true,
      defaultEditorToolsVisibility: "headers",
      // A pasted token stays in this tab's memory; GraphiQL's settings let a user opt in.
      shouldPersistHeaders: false,
    }),
  );

  // graphiql 3.8.3 keeps `shouldPersistHeaders` for tabs, but its history (`queries`,
  // `favorites`) stores every run's headers regardless: this storage strips them there
  // unless the user turned "persist headers" on in GraphiQL's settings.
  function headerlessHistory() {
    const HISTORY = ["graphiql:queries", "graphiql:favorites"];
    const persistHeaders = () => localStorage.getItem("graphiql:shouldPersistHeaders") === "true";
    const withoutHeaders = (value) => {
      try {
        return JSON.stringify(JSON.parse(value), (key, item) => (key === "headers" ? undefined : item));
      } catch (_) {
        return value;
      }
    };
    return {
      getItem: (key) => localStorage.getItem(key),
      setItem: (key, value) =>
        localStorage.setItem(key, HISTORY.includes(key) && !persistHeaders() ? withoutHeaders(value) : value),
      removeItem: (key) => localStorage.removeItem(key),
      clear: () => {
        for (const key of Object.keys(localStorage)) {
          if (key.startsWith("graphiql:")) localStorage.removeItem(key);
        }
      },
      get length() {
        return Object.keys(localStorage).filter((key) => key.startsWith("graphiql:")).length;
      },
    };
  }
})();
