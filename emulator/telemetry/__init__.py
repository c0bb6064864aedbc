"""The timeline: what the control plane recorded, per second of emulated time, under
CloudWatch's metric names; and the ways tools read it (Prometheus text, the CloudWatch API).

Nothing here knows HTTP or the Lambda service: the service and the sampler write into a
`Timeline`, the API layer reads from it (docs/timeline.md).
"""
