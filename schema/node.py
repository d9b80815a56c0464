"""The Node interface every object with a global id implements."""

import strawberry


@strawberry.interface(
    description="An object with an opaque, stable global id, fetchable by Query.node."
)
class Node:
    id: strawberry.ID = strawberry.field(description="Opaque global id; works with Query.node.")
