"""Event sources: event source mappings and the pollers that feed functions from queues and streams."""
