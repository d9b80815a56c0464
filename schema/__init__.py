"""The GraphQL layer: Strawberry types, queries, mutations and schema extensions."""
