"""Cross-cutting pieces every door uses: the Actor, application errors, request context."""
