"""The HTTP edge: one route table (routing.py), the fast path (fast_http.py) and its invoke
route (fast_invoke.py; the API Gateway port is its other user), what both HTTP paths share
(edge.py: limits, timeouts, rejections) and thin handlers that parse, call a service and
serialise (*_api.py)."""
