"""Runs operations against the schema: cached parsing and validation, query guards, execution.

Strawberry's own `Schema.execute` re-parses and re-validates every request; admin screens send
the same few documents over and over, so a cache keyed by the query text, bounded in entries
and bytes, removes that work from the hot path. The guards (tokens, depth, size, aliases) run
at parse and validation, before anything is cached.
"""

import hashlib
import logging
import re
import sys
from collections import OrderedDict
from dataclasses import dataclass, field
from inspect import isawaitable
from typing import Any, Protocol

from graphql import (
    ASTValidationRule,
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    ValidationContext,
    execute,
    get_operation_ast,
    parse,
    specified_rules,
    validate,
)
from strawberry import Schema
from strawberry.execution import optimized_is_awaitable
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from schema.fast_path import CompiledQuery, NotCompiled, VariablesDoNotCoerce

log = logging.getLogger("segments.execution")


@dataclass(frozen=True)
class QueryLimits:
    max_tokens: int = 2000
    max_depth: int = 10
    max_aliases: int = 15
    # Fields of an operation with every fragment spread expanded in place. Written out
    # without fragments a document cannot select more fields than it has tokens, so the
    # default admits anything the token limit admits; fragments are the only multiplier.
    max_fields: int = 2000


def selection_size(
    selection_set: SelectionSetNode, fragments: dict[str, FragmentDefinitionNode]
) -> tuple[int, int]:
    """(depth, fields) of a selection set once every fragment spread is expanded in place.

    Each fragment is measured once and remembered by name: its depth and size do not depend
    on where it is spread (type conditions are ignored, which only overestimates), so a
    document of fragments that each spread the next twice costs one visit per fragment,
    not 2^n. A fragment cycle (reported by graphql-core's NoFragmentCyclesRule in the same
    pass) counts as empty. Introspection fields add to the size, not to the depth: GraphiQL
    and code generators nest `ofType` deeply by design.
    """
    measured: dict[str, tuple[int, int]] = {}
    measuring: set[str] = set()

    def measure(selections: SelectionSetNode) -> tuple[int, int]:
        depth = fields = 0
        for selection in selections.selections:
            if isinstance(selection, FieldNode):
                sub_depth, sub_fields = (
                    measure(selection.selection_set) if selection.selection_set else (0, 0)
                )
                fields += 1 + sub_fields
                if not selection.name.value.startswith("__"):
                    depth = max(depth, 1 + sub_depth)
            elif isinstance(selection, InlineFragmentNode):
                sub_depth, sub_fields = measure(selection.selection_set)
                depth, fields = max(depth, sub_depth), fields + sub_fields
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                size = measured.get(name)
                if size is None:
                    fragment = fragments.get(name)
                    if fragment is None or name in measuring:
                        continue
                    measuring.add(name)
                    size = measured[name] = measure(fragment.selection_set)
                    measuring.discard(name)
                depth, fields = max(depth, size[0]), fields + size[1]
        return depth, fields

    return measure(selection_set)


def guard_rules(limits: QueryLimits) -> list[type[ASTValidationRule]]:
    """Validation rules for the query guards, run in graphql-core's one validation pass.

    Strawberry ships QueryDepthLimiter and MaxAliasesLimiter, but both expand fragment
    spreads afresh at every use (2^n work for fragments that each spread the next twice:
    about a second at n = 18) and they run as schema extensions around Schema.execute,
    which the Executor bypasses for its cached parse and validation. MaxTokensLimiter only
    sets parse's `max_tokens`, which counts comments; `prepare` passes `max_lexical_tokens`.
    """

    class SelectionLimits(ASTValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            fragments = {
                f.name.value: f
                for f in self.context.document.definitions
                if isinstance(f, FragmentDefinitionNode)
            }
            depth, fields = selection_size(node.selection_set, fragments)
            if depth > limits.max_depth:
                self.report_error(
                    GraphQLError(
                        f"The query is {depth} levels deep; at most {limits.max_depth} are allowed.",
                        node,
                    )
                )
            if fields > limits.max_fields:
                self.report_error(
                    GraphQLError(
                        f"The query selects {fields} fields once its fragments are expanded; "
                        f"at most {limits.max_fields} are allowed.",
                        node,
                        extensions={"code": "BAD_USER_INPUT"},
                    )
                )

    class AliasLimit(ASTValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            self.aliases = 0

        def enter_field(self, node: FieldNode, *_: Any) -> None:
            if node.alias is not None:
                self.aliases += 1
                if self.aliases == limits.max_aliases + 1:
                    self.report_error(
                        GraphQLError(
                            f"The query uses more than {limits.max_aliases} aliases.", node
                        )
                    )

    return [SelectionLimits, AliasLimit]


@dataclass(frozen=True)
class Prepared:
    """A parsed and validated document, or the errors that stop it."""

    document: DocumentNode | None
    errors: list[GraphQLError]
    parse_failed: bool = False
    # Compiled plans by operation name (None: not compilable), filled on first use.
    plans: dict[str | None, CompiledQuery | None] = field(default_factory=dict)
    # A short digest of the query text, naming the document in logs.
    shape: str = ""
    # Fast-path causes already logged for this document: (operation, what, cause type).
    logged: set[tuple[str | None, str, str]] = field(default_factory=set)


# What graphql-core's lexer reads as one block string, one string (to the end of its line
# when unterminated) or one run of comments with the white space between them. Strings are
# matched so that a `#` inside one is not taken for a comment; a lone surrogate ends a
# comment, as in the lexer.
_STRING_OR_COMMENTS = re.compile(
    r'"""(?:[^"\\]++|\\"""|\\|"(?!""))*+(?:""")?'
    r'|"(?:[^"\\\n\r]++|\\[^\n\r])*+"?'
    r"|(#[^\n\r\ud800-\udfff]*+(?:[ \t\n\r,\ufeff]*+#[^\n\r\ud800-\udfff]*+)*+)"
)
_NOT_A_LINE_BREAK = re.compile(r"[^\n\r]")


def blank_comments(query: str, max_tokens: int) -> str:
    """`query` with every comment replaced by as many spaces: the same tokens at the same
    lines and columns, so every error location stays what the client wrote.

    graphql-core's lexer keeps each comment as a token linked into the document: 500,000
    one-character comments (1 MB) cost about a second of CPU and 90 MB, held for as long as
    the document is. Its `max_comments` option would refuse them instead, but comments and
    white space are meant to count against the body limit only. Each match here ends at a
    token, so a document with more matches than twice the token limit is handed over as it
    is: the parser refuses it at the limit, after reading only as many comments as tokens.
    """
    if "#" not in query:
        return query
    pieces: list[str] = []
    done = 0
    for count, match in enumerate(_STRING_OR_COMMENTS.finditer(query)):
        if count > 2 * max_tokens + 2:
            return query
        if match.group(1) is not None:
            pieces += (query[done : match.start()], _NOT_A_LINE_BREAK.sub(" ", match.group()))
            done = match.end()
    return "".join(pieces) + query[done:] if pieces else query


def _tokens(document: DocumentNode) -> int:
    token, count = document.loc.start_token if document.loc else None, 0
    while token is not None:
        count, token = count + 1, token.next
    return count


class RequestContext(Protocol):
    def fresh(self) -> "RequestContext":
        """A context for the same request with nothing loaded yet."""
        ...


def _raised_on_purpose(error: Exception) -> bool:
    """A resolver's coded error (NOT_FOUND, FORBIDDEN, BAD_USER_INPUT, ...): graphql-core
    turns it into the response's error; the fast path has nothing to report."""
    return isinstance(error, GraphQLError) and bool((error.extensions or {}).get("code"))


class Executor:
    """Parses, validates and runs operations; keeps what it prepared for the next request.

    The cache holds valid documents only (a failure is cheap to find again and must not pin
    its text), at most `cache_entries` of them and `cache_bytes` by estimate: the query
    text, plus ~2 KB per token for the syntax tree, its locations and the compiled plans.
    """

    BYTES_PER_TOKEN = 2048

    def __init__(
        self,
        schema: Schema,
        limits: QueryLimits,
        *,
        cache_entries: int = 500,
        cache_bytes: int = 32 * 1024 * 1024,
        fast_path: bool = True,
    ) -> None:
        self.schema: GraphQLSchema = schema._schema
        self.limits = limits
        self.rules = [*specified_rules, *guard_rules(limits)]
        self.cache_entries = cache_entries
        self.cache_bytes = cache_bytes
        self.cached_bytes = 0
        self._prepared: OrderedDict[str, tuple[Prepared, int]] = OrderedDict()
        # Off (SEGMENTS_FAST_PATH=0): every operation runs through graphql-core.
        self.fast_path = fast_path
        self.fast_runs = 0
        self.fallbacks = 0

    def prepare(self, query: str) -> Prepared:
        cached = self._prepared.get(query)
        if cached is not None:
            self._prepared.move_to_end(query)
            return cached[0]
        source = blank_comments(query, self.limits.max_tokens)
        try:
            # max_lexical_tokens, not max_tokens: comments do not count as tokens.
            document = parse(source, max_lexical_tokens=self.limits.max_tokens)
        except GraphQLError as error:
            return Prepared(None, [error], parse_failed=True)
        errors = validate(self.schema, document, self.rules)
        if errors:
            return Prepared(None, errors)
        prepared = Prepared(
            document, [], shape=hashlib.blake2b(query.encode(), digest_size=6).hexdigest()
        )
        cost = sys.getsizeof(query) + self.BYTES_PER_TOKEN * _tokens(document)
        if source is not query:
            cost += sys.getsizeof(source)
        if cost <= self.cache_bytes:
            self._prepared[query] = (prepared, cost)
            self.cached_bytes += cost
            while len(self._prepared) > self.cache_entries or self.cached_bytes > self.cache_bytes:
                _, (_, evicted) = self._prepared.popitem(last=False)
                self.cached_bytes -= evicted
        return prepared

    @staticmethod
    def operation_type(document: DocumentNode, operation_name: str | None) -> OperationType | None:
        """The type of the operation to run, or None when the name does not pick one."""
        operation = get_operation_ast(document, operation_name)
        return operation.operation if operation else None

    async def execute(
        self,
        prepared: Prepared,
        *,
        variables: dict[str, Any] | None,
        operation_name: str | None,
        context: RequestContext,
    ) -> ExecutionResult:
        """The operation's result: from the compiled plan when there is one and it completes,
        else from graphql-core, on a fresh context so that nothing the abandoned attempt
        loaded (or failed to load) changes graphql-core's answer."""
        assert prepared.document is not None
        plan = self._plan(prepared, operation_name) if self.fast_path else None
        if plan is not None:
            try:
                data = await plan.execute(context, variables)
            except VariablesDoNotCoerce:
                pass  # graphql-core reports them; nothing to do with the fast path
            except NotCompiled as reason:  # met at run time: a union member's selections
                self._log_once(prepared, operation_name, logging.INFO, "not compiled", reason)
                prepared.plans[operation_name] = None
                context = context.fresh()
            except Exception as error:  # noqa: BLE001 - graphql-core below gives the exact response
                self.fallbacks += 1
                if not _raised_on_purpose(error):
                    self._log_once(prepared, operation_name, logging.WARNING, "fell back", error)
                context = context.fresh()
            else:
                self.fast_runs += 1
                return ExecutionResult(data=data)
        return await self.execute_standard(
            prepared.document, variables=variables, operation_name=operation_name, context=context
        )

    def _plan(self, prepared: Prepared, operation_name: str | None) -> CompiledQuery | None:
        if operation_name not in prepared.plans:
            assert prepared.document is not None
            plan = None
            if self.operation_type(prepared.document, operation_name) is OperationType.QUERY:
                try:
                    plan = CompiledQuery(self.schema, prepared.document, operation_name)
                except NotCompiled as reason:
                    self._log_once(prepared, operation_name, logging.INFO, "not compiled", reason)
            prepared.plans[operation_name] = plan
        return prepared.plans[operation_name]

    @staticmethod
    def _log_once(
        prepared: Prepared, operation_name: str | None, level: int, what: str, cause: BaseException
    ) -> None:
        """One line per query shape (document and operation) and kind of cause."""
        key = (operation_name, what, type(cause).__name__)
        if key in prepared.logged:
            return
        prepared.logged.add(key)
        log.log(
            level,
            "fast path %s: operation=%s shape=%s cause=%s: %s",
            what,
            operation_name or "-",
            prepared.shape,
            type(cause).__name__,
            cause,
        )

    async def execute_standard(
        self,
        document: DocumentNode,
        *,
        variables: dict[str, Any] | None,
        operation_name: str | None,
        context: Any,
    ) -> ExecutionResult:
        """graphql-core's executor: every operation type, every error path."""
        result = execute(
            self.schema,
            document,
            context_value=context,
            variable_values=variables,
            operation_name=operation_name,
            executor_class=StrawberryGraphQLCoreExecutionContext,
            is_awaitable=optimized_is_awaitable,
        )
        if isawaitable(result):
            result = await result
        if result.errors and len(result.errors) > 1:
            result.errors.sort(key=_error_order)
        return result


def _error_order(error: GraphQLError) -> tuple[tuple[int, int], tuple[tuple[int, int, str], ...]]:
    """Errors in the order of the document (then of their response paths), the same on every
    run: graphql-core lists them as they happen, and fields resolved concurrently fail in
    whatever order their loads complete."""
    location = error.locations[0] if error.locations else None
    where = (location.line, location.column) if location else (sys.maxsize, sys.maxsize)
    path = tuple(
        (0, step, "") if isinstance(step, int) else (1, 0, step) for step in error.path or ()
    )
    return where, path
