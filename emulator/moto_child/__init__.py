"""Code that runs only inside the moto child process (the control plane never imports
moto): fast SQS model, short request paths and keep-alive, applied before moto serves."""
