"""A compiled executor for queries: the hot path of admin screens.

graphql-core's executor pays about 2 µs of bookkeeping per field (resolve info, dispatch on
the return type, awaitable checks), which for a page of 50 segments with their usage is
ten times the cost of fetching the rows. This module compiles a validated query once into a
plan of closures — per object type, the fields to fetch, how to get each value and how to
serialise it — and runs that plan over the resolvers' results.

It covers what admin screens send (fields, aliases, arguments, variables, fragments,
__typename, unions and interfaces, @skip and @include). Anything else — introspection, other
directives, mutations — is not compiled, and any exception while running a plan (a resolver's coded error, a null
in a non-null field, an unexpected shape) makes the caller re-run the operation through
graphql-core on a fresh context, which produces the exact GraphQL response with errors.
Queries have no side effects, so running one twice is safe. tests/test_fast_path_equivalence.py
holds both paths to byte-identical responses on queries generated from the schema.

What a list request costs, and where the plan saves (issue "Performance, part 2"):

- Objects are completed by generated straight-line code, one statement per field; leaves
  that are already what the response holds (str, int in range, bool) are not called.
- Values that orjson writes exactly as the scalar's serializer would are left for orjson,
  which dumps the response once at the end: UTC datetimes (DateTime is isoformat(), and
  asyncpg reads every timestamptz as UTC; orjson's RFC 3339 text is the same). So the
  data of a fast run holds datetimes where graphql-core's holds strings; the response
  bytes are the same (api/graphql_http.py's _dumps writes both).
- A field declared with strawberry.field(metadata={MEMO: key_of}) is completed once per
  key and selection and reused across requests (bounded, MEMO_ENTRIES): Segment.rules,
  keyed by id, version and updated_at, the key of the rules objects' own cache. A
  completion that queued async work (a SegmentMatch's referenced segment) is not kept.
- Root fields whose arguments in this request are built-in scalars or null call their
  resolver directly with them (no Strawberry argument conversion, no resolve info): like
  the argument-free resolvers, ours read nothing from `info` but the context.
- Loader-backed fields hand back the DataLoader's shared future wrapped in Mapped
  (schema/context.py), and SharedLoader.shared registers a key without a done callback,
  so a page of 50 segments costs no Task and no event-loop callback per segment.
- Connections (schema/pagination.py) keep their rows: nodes are built once when asked
  for, cursors only for the edges selected (a list screen selects nodes), and PageInfo's
  two cursors.

It reads internals of graphql-core 3.3 (VariableValues) and strawberry 0.341 (the resolve
info type, field definitions, resolver wrappers): pyproject.toml pins those minor versions,
and SEGMENTS_FAST_PATH=0 switches the plan off.
"""

import asyncio
import itertools
import operator
from collections.abc import Callable, Hashable
from datetime import UTC, datetime
from inspect import iscoroutine
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLAbstractType,
    GraphQLEnumType,
    GraphQLError,
    GraphQLField,
    GraphQLIncludeDirective,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLSkipDirective,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_named_type,
    get_operation_ast,
)
from graphql.execution.values import (
    get_argument_values,
    get_directive_values,
    get_variable_values,
)
from graphql.pyutils import Path
from strawberry.execution import optimized_is_awaitable
from strawberry.schema.schema import _OperationContextAwareGraphQLResolveInfo
from strawberry.types.base import get_object_definition

from schema.context import Mapped

DEFINITION = "strawberry-definition"
# strawberry.field(metadata={MEMO: key_of}): the field's completed value depends only on
# key_of(source) and the selection (see Plan._memoized).
MEMO = "fast-path-memo"
# Completed values of memoized fields, shared by every plan, oldest dropped first.
MEMO_ENTRIES = 10_000
_memo: dict[tuple[int, Hashable], Any] = {}
_memo_tokens = itertools.count()
_MISSING = object()
# Argument types Strawberry hands to a resolver as graphql-core coerced them.
_PLAIN_SCALARS = frozenset({"String", "Int", "Float", "Boolean", "ID"})

Completer = Callable[[Any, "Run"], Any]


class NotCompiled(Exception):
    """The document uses something the fast path does not handle."""


class VariablesDoNotCoerce(Exception):
    """The request's variables do not fit the operation: graphql-core reports why."""


class FastInfo:
    """What our argument-free resolvers read from `info`: the request context."""

    __slots__ = ("context",)

    def __init__(self, context: Any) -> None:
        self.context = context


class Run:
    """One execution: the context, coerced variables, and async work still to finish."""

    __slots__ = ("context", "info", "pending", "variables")

    def __init__(self, context: Any, variables: Any) -> None:
        self.context = context
        self.info = FastInfo(context)
        self.variables = variables
        # (awaitable, target dict, key, completer): filled breadth-first, so the async
        # resolvers of all siblings run together and their DataLoaders batch.
        self.pending: list[tuple[Any, dict[str, Any], str, Completer]] = []


def _null(*_: Any) -> Any:
    raise GraphQLError("null in a non-null field")


def _leaf(graphql_type: GraphQLScalarType | GraphQLEnumType) -> Callable[[Any], Any]:
    serialize = graphql_type.serialize
    wrapped = getattr(graphql_type, "wrapped_cls", None)
    if isinstance(graphql_type, GraphQLEnumType) and wrapped is not None:
        # Strawberry's enum serializer scans every value per call; a dict does it once.
        names = {
            member: name
            for name, v in graphql_type.values.items()
            for member in wrapped
            if member.value == v.value
        }
        # Output objects usually carry the stored value itself (see schema/enums.py).
        names.update({member.value: names[member] for member in wrapped if member in names})
        return lambda value: names.get(value) or serialize(value)
    python_type = {"String": str, "ID": str, "Boolean": bool}.get(graphql_type.name)
    if python_type is not None:
        return lambda value: value if type(value) is python_type else serialize(value)
    if graphql_type.name == "Int":
        return lambda value: (
            value if type(value) is int and -(2**31) <= value < 2**31 else serialize(value)
        )
    return serialize


_ISOFORMAT = operator.methodcaller("isoformat")


def _defers_to_orjson(graphql_type: GraphQLScalarType | GraphQLEnumType) -> bool:
    """Strawberry's DateTime, serialised by isoformat(): for UTC datetimes, orjson's own
    RFC 3339 output is the same text (microseconds only when set, +00:00)."""
    serialize = getattr(graphql_type, "serialize", None)
    return (
        graphql_type.name == "DateTime"
        and isinstance(serialize, operator.methodcaller)
        and repr(serialize) == repr(_ISOFORMAT)
    )


def _conditional_selections(document: DocumentNode) -> list[Any]:
    """Every field, fragment spread and inline fragment of the document with directives,
    in document order; anything but @skip and @include is not compiled."""
    found: list[Any] = []

    def visit(selection_set: SelectionSetNode | None) -> None:
        for selection in selection_set.selections if selection_set else ():
            if selection.directives:
                names = {d.name.value for d in selection.directives}
                if not names <= {GraphQLSkipDirective.name, GraphQLIncludeDirective.name}:
                    raise NotCompiled(f"directives {sorted(names)}")
                found.append(selection)
            if not isinstance(selection, FragmentSpreadNode):
                visit(selection.selection_set)

    for definition in document.definitions:
        if isinstance(definition, (OperationDefinitionNode, FragmentDefinitionNode)):
            visit(definition.selection_set)
    return found


def _included(node: Any, variables: Any) -> bool:
    """@skip and @include of `node`, read as graphql-core's should_include_node reads them."""
    skip = get_directive_values(GraphQLSkipDirective, node, variables)
    if skip is not None and skip["if"]:
        return False
    include = get_directive_values(GraphQLIncludeDirective, node, variables)
    return include is None or bool(include["if"])


class CompiledQuery:
    """A query's plans, one per combination of its @skip/@include conditions (most queries
    have none, so one plan); each compiled when a request first needs it."""

    MAX_PLANS = 16

    def __init__(self, schema: GraphQLSchema, document: DocumentNode, operation_name: str | None):
        operation = get_operation_ast(document, operation_name)
        if operation is None or operation.operation is not OperationType.QUERY:
            raise NotCompiled("only queries")
        self.schema = schema
        self.document = document
        self.operation = operation
        self.conditional = _conditional_selections(document)
        self.plans: dict[tuple[bool, ...], Plan] = {}
        if not self.conditional:
            self.plans[()] = Plan(schema, document, operation_name)

    async def execute(self, context: Any, raw_variables: dict[str, Any] | None) -> dict[str, Any]:
        variables = get_variable_values(
            self.schema, self.operation.variable_definitions or (), raw_variables or {}
        )
        if isinstance(variables, list):
            raise VariablesDoNotCoerce()
        conditions = tuple(_included(node, variables) for node in self.conditional)
        plan = self.plans.get(conditions)
        if plan is None:
            if len(self.plans) >= self.MAX_PLANS:
                raise NotCompiled("too many @skip/@include combinations")
            included = {
                id(node): value for node, value in zip(self.conditional, conditions, strict=True)
            }
            plan = self.plans[conditions] = Plan(
                self.schema,
                self.document,
                self.operation.name and self.operation.name.value,
                included,
            )
        return await plan.run(context, variables)


class Plan:
    """A query compiled against the schema; reusable across requests.

    `included` says, by id, which of the document's nodes carrying @skip/@include are in
    (see CompiledQuery); a node with directives that it does not name is not compiled.
    """

    def __init__(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        operation_name: str | None,
        included: dict[int, bool] | None = None,
    ):
        operation = get_operation_ast(document, operation_name)
        if operation is None or operation.operation is not OperationType.QUERY:
            raise NotCompiled("only queries")
        self.schema = schema
        self.included = included or {}
        self.operation: OperationDefinitionNode = operation
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self._objects: dict[tuple[str, tuple[int, ...]], Callable[[Any, Run], dict[str, Any]]] = {}
        self._runtime_types: dict[type, GraphQLObjectType] = {}
        root = schema.query_type
        assert root is not None
        self.root = self._object(root, (operation.selection_set,))

    # -- compiling ------------------------------------------------------------------------

    def _collect(
        self, object_type: GraphQLObjectType, selection_sets: tuple[SelectionSetNode, ...]
    ) -> dict[str, list[FieldNode]]:
        """The fields of `selection_sets` on `object_type` by response key, as graphql-core's
        collect_fields groups them: a fragment is expanded at most once per call, however
        often it is spread (fragments that each spread the next twice stay linear).

        graphql-core's own collect_fields reads @skip/@include from one request's variables
        at every execution; a plan decides them once, from `included` (a skipped spread does
        not count as expanded, as in collect_fields).
        """
        fields: dict[str, list[FieldNode]] = {}
        visited: set[str] = set()

        def visit(selection_set: SelectionSetNode) -> None:
            for selection in selection_set.selections:
                if selection.directives:
                    included = self.included.get(id(selection))
                    if included is None:
                        raise NotCompiled("directives")
                    if not included:
                        continue
                if isinstance(selection, FieldNode):
                    key = selection.alias.value if selection.alias else selection.name.value
                    fields.setdefault(key, []).append(selection)
                elif isinstance(selection, InlineFragmentNode):
                    if self._applies(selection.type_condition, object_type):
                        visit(selection.selection_set)
                elif isinstance(selection, FragmentSpreadNode):
                    name = selection.name.value
                    fragment = self.fragments.get(name)
                    if (
                        fragment is not None
                        and name not in visited
                        and self._applies(fragment.type_condition, object_type)
                    ):
                        visited.add(name)
                        visit(fragment.selection_set)

        for selection_set in selection_sets:
            visit(selection_set)
        return fields

    def _applies(self, condition: Any, object_type: GraphQLObjectType) -> bool:
        if condition is None:
            return True
        name = condition.name.value
        if name == object_type.name:
            return True
        condition_type = self.schema.get_type(name)
        return isinstance(condition_type, GraphQLAbstractType) and self.schema.is_sub_type(
            condition_type, object_type
        )

    def _object(
        self, object_type: GraphQLObjectType, selection_sets: tuple[SelectionSetNode, ...]
    ) -> Callable[[Any, Run], dict[str, Any]]:
        cache_key = (object_type.name, tuple(id(s) for s in selection_sets))
        compiled = self._objects.get(cache_key)
        if compiled is not None:
            return compiled
        # The object's completion is generated as straight-line Python: one statement per
        # field, leaves serialised inline. Attribute names come from Python identifiers
        # and response keys are passed as constants, never spliced, into the source.
        namespace: dict[str, Any] = {"_null": _null, "_is_awaitable": optimized_is_awaitable}
        lines = ["def complete_object(source, run):", "    result = {}"]
        for index, (key, nodes) in enumerate(self._collect(object_type, selection_sets).items()):
            namespace[f"k{index}"] = key
            name = nodes[0].name.value
            if name == "__typename":
                namespace[f"t{index}"] = object_type.name
                lines.append(f"    result[k{index}] = t{index}")
                continue
            if name.startswith("__"):
                raise NotCompiled("introspection")
            field = object_type.fields[name]
            definition = field.extensions.get(DEFINITION)
            if definition is None:
                raise NotCompiled("not a strawberry field")
            sub_sets = tuple(n.selection_set for n in nodes if n.selection_set is not None)
            key_of = (definition.metadata or {}).get(MEMO)
            if key_of is not None:
                namespace[f"m{index}"] = self._memoized(object_type, field, nodes, sub_sets, key_of)
                lines.append(f"    result[k{index}] = m{index}(source, run)")
                continue
            if definition.base_resolver is None and definition.python_name.isidentifier():
                lines.append(f"    value = source.{definition.python_name}")
            else:
                namespace[f"g{index}"] = self._getter(object_type, field, nodes)
                lines.append(f"    value = g{index}(source, run)")
            complete = self._expression(field.type, sub_sets, f"s{index}", namespace)
            if definition.base_resolver is not None:  # may hand back a future or coroutine
                namespace[f"c{index}"] = self._completer(field.type, sub_sets)
                lines.append("    if _is_awaitable(value):")
                lines.append(f"        result[k{index}] = None")
                lines.append(f"        run.pending.append((value, result, k{index}, c{index}))")
                lines.append("    else:")
                lines.append(f"        result[k{index}] = {complete}")
            else:
                lines.append(f"    result[k{index}] = {complete}")
        lines.append("    return result")
        exec("\n".join(lines), namespace)  # noqa: S102 - generated from the schema, see above
        complete_object = namespace["complete_object"]
        self._objects[cache_key] = complete_object
        return complete_object

    def _expression(
        self,
        graphql_type: GraphQLOutputType,
        sub_sets: tuple[SelectionSetNode, ...],
        name: str,
        namespace: dict[str, Any],
        value: str = "value",
    ) -> str:
        """Inline Python completing the variable `value` of `graphql_type`, nulls checked;
        lists become comprehensions, leaves are serialised in place, objects call their
        compiled completion."""
        non_null = isinstance(graphql_type, GraphQLNonNull)
        inner = graphql_type.of_type if non_null else graphql_type
        if isinstance(inner, GraphQLList):
            item = f"{value}_"
            item_code = self._expression(inner.of_type, sub_sets, f"{name}_", namespace, item)
            core = f"[{item_code} for {item} in {value}]"
        elif isinstance(inner, (GraphQLScalarType, GraphQLEnumType)):
            namespace[name] = _leaf(inner)
            if _defers_to_orjson(inner):
                # A UTC datetime (as asyncpg reads every timestamptz) stays a datetime:
                # orjson writes it as isoformat() would, once, when the response is dumped.
                namespace.update(_datetime=datetime, _utc=UTC)
                core = (
                    f"({value} if {value}.__class__ is _datetime and {value}.tzinfo is _utc"
                    f" else {name}({value}))"
                )
            elif inner.name in ("String", "ID"):
                core = f"({value} if {value}.__class__ is str else {name}({value}))"
            else:
                core = f"{name}({value})"
        elif isinstance(inner, GraphQLObjectType):
            namespace[name] = self._object(inner, sub_sets)
            core = f"{name}({value}, run)"
        elif isinstance(inner, GraphQLAbstractType):
            namespace[name] = self._abstract(inner, sub_sets)
            core = f"{name}({value}, run)"
        else:
            raise NotCompiled(f"type {graphql_type}")
        if non_null:
            return f"({core} if {value} is not None else _null())"
        return f"(None if {value} is None else {core})"

    def _getter(
        self, parent_type: GraphQLObjectType, field: GraphQLField, nodes: list[FieldNode]
    ) -> Callable[[Any, Run], Any]:
        definition = field.extensions.get(DEFINITION)
        if definition is None:
            raise NotCompiled("not a strawberry field")
        resolver = definition.base_resolver
        if resolver is None:
            attribute = definition.python_name
            return lambda source, run: getattr(source, attribute)
        if not definition.arguments and not definition.extensions:
            function = resolver.wrapped_func
            if resolver.info_parameter is not None:
                info_name = resolver.info_parameter.name
                return lambda source, run: function(source, **{info_name: run.info})
            return lambda source, run: function(source)
        # Resolvers with arguments (the root fields) go through Strawberry's own wrapper,
        # which converts the arguments into Python inputs and enums, unless every argument
        # of this request is a built-in scalar or null: those need no conversion, and the
        # resolver is called with them directly (its info, as above, carries the context).
        node = nodes[0]
        name = node.name.value
        resolve = field.resolve
        assert resolve is not None
        direct = self._direct_call(field, definition)

        def with_arguments(source: Any, run: Run) -> Any:
            arguments = get_argument_values(field, node, run.variables)
            if direct is not None:
                called = direct(source, run, arguments)
                if called is not _MISSING:
                    return called
            # As StrawberryGraphQLCoreExecutionContext.build_resolve_info makes it (the
            # versions are pinned in pyproject.toml); the path is the field's own, which only
            # errors use, and an error sends the operation to graphql-core anyway.
            info = _OperationContextAwareGraphQLResolveInfo(
                field_name=name,
                field_nodes=nodes,
                return_type=field.type,
                parent_type=parent_type,
                path=Path(None, name, parent_type.name),
                schema=self.schema,
                fragments=self.fragments,
                root_value=None,
                operation=self.operation,
                variable_values=run.variables.coerced,
                context=run.context,
                is_awaitable=optimized_is_awaitable,
                abort_signal=None,
                async_helpers=None,
                operation_extensions=None,
            )
            return resolve(source, info, **arguments)

        return with_arguments

    @staticmethod
    def _direct_call(
        field: GraphQLField, definition: Any
    ) -> Callable[[Any, Run, dict[str, Any]], Any] | None:
        """Calls the resolver itself when a request's arguments are all plain (built-in
        scalars, lists of them, or null), else answers _MISSING; None when the field always
        needs Strawberry's wrapper (field extensions, a resolver without `info`)."""
        resolver = definition.base_resolver
        if definition.extensions or resolver.info_parameter is None:
            return None
        if len(field.args) != len(definition.arguments):
            return None
        # Strawberry builds the GraphQL arguments in the order of its own.
        python_names = {
            graphql_name: argument.python_name
            for graphql_name, argument in zip(field.args, definition.arguments, strict=True)
        }
        plain = {
            graphql_name: isinstance(named := get_named_type(argument.type), GraphQLScalarType)
            and named.name in _PLAIN_SCALARS
            for graphql_name, argument in field.args.items()
        }
        function = resolver.wrapped_func
        info_name = resolver.info_parameter.name
        with_self = resolver.self_parameter is not None

        def call(source: Any, run: Run, arguments: dict[str, Any]) -> Any:
            for graphql_name, value in arguments.items():
                if value is not None and not plain[graphql_name]:
                    return _MISSING
            kwargs = {python_names[k]: v for k, v in arguments.items()}
            kwargs[info_name] = run.info
            return function(source, **kwargs) if with_self else function(**kwargs)

        return call

    def _memoized(
        self,
        parent_type: GraphQLObjectType,
        field: GraphQLField,
        nodes: list[FieldNode],
        sub_sets: tuple[SelectionSetNode, ...],
        key_of: Callable[[Any], Hashable],
    ) -> Callable[[Any, Run], Any]:
        """The field completed once per key_of(source) and selection, then reused across
        requests. For read-only values derived from stored data that a key names exactly
        (a segment's rules by id, version and updated_at). Completion that queued async work
        (a referenced segment) is not kept: those dicts are filled in later, per request."""
        definition = field.extensions[DEFINITION]
        if definition.base_resolver is not None and definition.base_resolver.is_async:
            raise NotCompiled("a memoized field must resolve synchronously")
        getter = self._getter(parent_type, field, nodes)
        complete = self._completer(field.type, sub_sets)
        token = next(_memo_tokens)

        def memoized(source: Any, run: Run) -> Any:
            key = (token, key_of(source))
            found = _memo.get(key, _MISSING)
            if found is not _MISSING:
                return found
            value = getter(source, run)
            if optimized_is_awaitable(value):
                if iscoroutine(value):
                    value.close()
                raise NotCompiled("a memoized field resolved asynchronously")
            queued = len(run.pending)
            done = complete(value, run)
            if len(run.pending) == queued:
                if len(_memo) >= MEMO_ENTRIES:
                    del _memo[next(iter(_memo))]
                _memo[key] = done
            return done

        return memoized

    def _completer(
        self, graphql_type: GraphQLOutputType, sub_sets: tuple[SelectionSetNode, ...]
    ) -> Completer:
        """A function completing one value of `graphql_type` (for values resolved later)."""
        namespace: dict[str, Any] = {"_null": _null}
        expression = self._expression(graphql_type, sub_sets, "s", namespace)
        exec(f"def complete(value, run):\n    return {expression}", namespace)  # noqa: S102
        return namespace["complete"]

    def _abstract(
        self, abstract: GraphQLAbstractType, sub_sets: tuple[SelectionSetNode, ...]
    ) -> Completer:
        by_type: dict[str, Callable[[Any, Run], dict[str, Any]]] = {}

        def complete_abstract(value: Any, run: Run) -> Any:
            runtime = self._runtime_types.get(type(value))
            if runtime is None:
                definition = get_object_definition(type(value), strict=True)
                runtime = self.schema.get_type(definition.name)
                if not isinstance(runtime, GraphQLObjectType) or not self.schema.is_sub_type(
                    abstract, runtime
                ):
                    raise GraphQLError(f"{definition.name} is not a possible {abstract.name}")
                self._runtime_types[type(value)] = runtime
            complete_object = by_type.get(runtime.name)
            if complete_object is None:
                complete_object = by_type[runtime.name] = self._object(runtime, sub_sets)
            return complete_object(value, run)

        return complete_abstract

    # -- running --------------------------------------------------------------------------

    async def execute(self, context: Any, raw_variables: dict[str, Any] | None) -> dict[str, Any]:
        variables = get_variable_values(
            self.schema, self.operation.variable_definitions or (), raw_variables or {}
        )
        if isinstance(variables, list):
            raise VariablesDoNotCoerce()
        return await self.run(context, variables)

    async def run(self, context: Any, variables: Any) -> dict[str, Any]:
        """The data of the operation for coerced `variables`."""
        run = Run(context, variables)
        batch: list[tuple[Any, dict[str, Any], str, Completer]] = []
        try:
            data = self.root(None, run)
            while run.pending:
                # Every load of this level is registered by now, so the first await lets
                # the DataLoaders run one batch each and later awaits find their futures
                # done. Coroutines get a Task so they all start (and load) before any is
                # awaited. Completing a value may queue the next level in run.pending.
                batch = [
                    (asyncio.ensure_future(a) if iscoroutine(a) else a, target, key, complete)
                    for a, target, key, complete in run.pending
                ]
                run.pending = []
                for awaitable, target, key, complete in batch:
                    if type(awaitable) is Mapped:
                        value = awaitable.convert(await awaitable.future)
                    else:
                        value = await awaitable
                    target[key] = complete(value, run)
        except Exception:
            await _settle(batch + run.pending)
            raise
        except BaseException:
            _abandon(batch + run.pending)
            raise
        return data


async def _settle(pending: list[tuple[Any, ...]]) -> None:
    """Let the work a failed run started finish, its results and errors dropped, so that
    nothing of it still runs (or holds a connection, or warns of an exception never
    retrieved) when the caller falls back. Statements are not cancelled halfway: each is
    bounded by the statement timeout, and this is the error path only."""
    started = []
    for awaitable, *_ in pending:
        if iscoroutine(awaitable):  # never started
            awaitable.close()
        else:
            started.append(awaitable.future if type(awaitable) is Mapped else awaitable)
    if started:
        await asyncio.gather(*started, return_exceptions=True)


def _abandon(pending: list[tuple[Any, ...]]) -> None:
    """Stop at once what a cancelled run leaves behind (the request itself is going away)."""
    for awaitable, *_ in pending:
        if iscoroutine(awaitable):
            awaitable.close()
        elif isinstance(awaitable, asyncio.Task):
            awaitable.cancel()


def compile_plan(
    schema: GraphQLSchema, document: DocumentNode, operation_name: str | None
) -> CompiledQuery | None:
    """The compiled operation, or None when it must run through graphql-core."""
    try:
        return CompiledQuery(schema, document, operation_name)
    except NotCompiled:
        return None
