"""Execution environments as the control plane sees them: the fork-server client (where a
process is forked), the environment state machine, warm pools, and the invoker that runs
one invocation and shapes its outcome as Lambda does."""
