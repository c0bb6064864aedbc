"""The Lambda service: admission control around the invoker (lambda_service.py), the
asynchronous invocation queue, destinations, and run-time function settings."""
