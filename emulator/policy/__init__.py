"""Pure policies: AWS's rules as functions of explicit state and a `now` passed in.

No asyncio, no I/O, no clock reads (an import contract in pyproject.toml keeps it so);
tested exactly in virtual time (tests/unit).
"""
