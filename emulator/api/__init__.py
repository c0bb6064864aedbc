"""The HTTP edge: one route table (routing.py), the fast invoke path (fast_invoke.py), what
both HTTP paths share (edge.py: limits, timeouts, rejections) and thin handlers that parse,
call a service and serialise (*_api.py)."""
