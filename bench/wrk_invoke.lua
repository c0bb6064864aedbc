-- wrk script: POST "{}" to the invoke path given as the URL's path (benchmark 2).
wrk.method = "POST"
wrk.body = "{}"
wrk.headers["Content-Type"] = "application/json"
