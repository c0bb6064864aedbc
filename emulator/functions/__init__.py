"""The function catalogue (names, ARNs, versions, code) and the per-function counters."""
