"""`emulator load`: an open-loop load generator for the emulator (docs/load-testing.md)."""
