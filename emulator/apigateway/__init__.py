"""API Gateway in front of Lambda: REST and HTTP APIs from the template, served on their own port.

Pure parts: `routing` (stage and route selection), `events` (payload formats 1.0 and 2.0,
response mapping), `answers` (API Gateway's own error answers), `throttles` (which token
buckets guard a request). The shells: `pipeline` (route -> API key -> throttle -> integration
-> response), `http` (the listening site), `management` (the GetRestApis family of calls),
`front_door` (what emulator/server.py starts and stops).
"""
