"""Checks of the graph of segments referencing segments: cycles and the depth of chains.

A graph maps a segment id to the ids its rules reference. Pure functions; the caller loads
the part of the graph that matters (what the changed segment reaches, and what reaches it).
"""

from collections.abc import Iterable, Mapping

Graph = Mapping[int, Iterable[int]]

# A chain of references is at most this many segments long, the first segment counting:
# A → B → C → D → E is 5.
MAX_CHAIN = 5


def find_cycle(graph: Graph, start: int) -> list[int] | None:
    """A path start → … → start through `graph`, or None when `start` is on no cycle.
    Depth first in the order of each segment's references, so the answer is stable."""
    path = [start]
    trail = [iter(graph.get(start, ()))]
    seen = {start}
    while trail:
        for target in trail[-1]:
            if target == start:
                return [*path, start]
            if target not in seen:
                seen.add(target)
                path.append(target)
                trail.append(iter(graph.get(target, ())))
                break
        else:
            trail.pop()
            path.pop()
    return None


def longest_chain(graph: Graph, start: int) -> int:
    """How many segments the longest chain of references from `start` holds, `start`
    counting (a segment that references nothing: 1). `graph` must be acyclic."""
    lengths: dict[int, int] = {}
    stack = [(start, False)]
    while stack:
        node, done = stack.pop()
        if done:
            lengths[node] = 1 + max((lengths[t] for t in graph.get(node, ())), default=0)
        elif node not in lengths:
            stack.append((node, True))
            stack.extend((t, False) for t in graph.get(node, ()) if t not in lengths)
    return lengths[start]


def reversed_graph(graph: Graph) -> dict[int, list[int]]:
    """Who references whom, turned around: id → the ids whose rules reference it."""
    back: dict[int, list[int]] = {}
    for source, targets in graph.items():
        for target in targets:
            back.setdefault(target, []).append(source)
    return back


def chain_through(graph: Graph, node: int) -> int:
    """The longest chain of references that passes through `node`: the longest one reaching
    it plus the longest one leaving it, `node` counted once. `graph` must be acyclic."""
    return longest_chain(reversed_graph(graph), node) + longest_chain(graph, node) - 1
