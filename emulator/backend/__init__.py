"""The backing AWS services: the moto child process, an async client for it, provisioning
of template resources, and the proxy that serves every non-Lambda API on our endpoint."""
