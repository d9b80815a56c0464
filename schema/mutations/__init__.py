"""Mutation: the write side of the API, one module per domain."""

import strawberry


@strawberry.type(description="The write side of the segments API; every field needs an editor key.")
class Mutation:
    @strawberry.field
    def placeholder(self) -> bool:
        return True
