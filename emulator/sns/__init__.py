"""SNS → Lambda: the control plane's side of SNS fan-out (emulator/sns/fanout.py)."""
