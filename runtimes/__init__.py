"""Code that runs inside an execution environment. Never imports the control plane."""
