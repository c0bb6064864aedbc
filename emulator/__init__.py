"""The control plane of the local serverless emulator."""

__version__ = "0.1.0"
