"""API Gateway's own answers (its "gateway responses") and the headers it adds. Pure.

Types and statuses: https://docs.aws.amazon.com/apigateway/latest/developerguide/supported-gateway-response-types.html.
Bodies, byte for byte as AWS sends them (the space in the 5xx bodies included):
* an unknown REST resource or method: 403 `{"message":"Missing Authentication Token"}` with
  `x-amzn-ErrorType: MissingAuthenticationTokenException`
  (https://repost.aws/knowledge-center/api-gateway-troubleshoot-403-forbidden);
* an unknown HTTP API route: 404 `{"message":"Not Found"}`
  (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-routes.html);
* the Lambda API refusing the invocation (a throttle): 500, a function error or a malformed
  proxy response: 502, both `{"message": "Internal server error"}`
  (https://docs.aws.amazon.com/lambda/latest/dg/services-apigateway-errors.html);
* throttled: 429 `{"message":"Too Many Requests"}`; quota spent: 429 `{"message":"Limit Exceeded"}`;
  a missing or invalid API key: 403 `{"message":"Forbidden"}`;
* integration timeout: 504 `{"message": "Endpoint request timed out"}`.
* authorizers (https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-use-lambda-authorizer.html,
  https://repost.aws/knowledge-center/api-gateway-401-error-lambda-authorizer): a missing
  identity source, a token the validation expression rejects, or an authorizer that raised
  "Unauthorized": 401 `{"message":"Unauthorized"}` (UNAUTHORIZED); a policy that does not
  allow the method: 403 `{"Message":"User is not authorized to access this resource"}`,
  "... with an explicit deny" when a Deny matched (ACCESS_DENIED,
  https://repost.aws/knowledge-center/api-gateway-lambda-authorization-errors); an authorizer
  that failed, was throttled or answered something else: 500 `{"message": null}`
  (AUTHORIZER_CONFIGURATION_ERROR / AUTHORIZER_FAILURE); an unsigned request to an AWS_IAM
  method: 403 Missing Authentication Token. HTTP APIs: 401 `{"message":"Unauthorized"}`,
  403 `{"message":"Forbidden"}`, 500 `{"message":"Internal Server Error"}`
  (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-lambda-authorizer.html).
HTTP APIs answer their 5xx as `{"message":"Internal Server Error"}` (500) and, on timeout,
`{"message":"Service Unavailable"}` (503), and send `apigw-requestid` instead of
`x-amzn-RequestId` and no `x-amzn-ErrorType`. Where AWS documents no header or body, our
choice is in README 'Choices'.
"""

from __future__ import annotations

from enum import StrEnum

from emulator.apigateway.events import GatewayResponse
from emulator.template.api_specs import REST

JSON = "application/json"


class Answer(StrEnum):
    MISSING_ROUTE = "missing-route"
    UNKNOWN_API = "unknown-api"
    FORBIDDEN = "forbidden"  # INVALID_API_KEY
    THROTTLED = "throttled"
    QUOTA_EXCEEDED = "quota-exceeded"
    LAMBDA_THROTTLED = "lambda-throttled"  # the Lambda API throttled the invocation (429)
    LAMBDA_REFUSED = "lambda-refused"  # the Lambda API rejected it otherwise (an event over 6 MB)
    BAD_RESPONSE = "bad-response"  # a function error or a malformed proxy response
    TIMEOUT = "timeout"  # INTEGRATION_TIMEOUT
    TOO_LARGE = "too-large"  # REQUEST_TOO_LARGE
    NOT_CONFIGURED = "not-configured"  # API_CONFIGURATION_ERROR: no Lambda integration to call
    UNAUTHORIZED = "unauthorized"  # UNAUTHORIZED: no identity, or the authorizer said so
    ACCESS_DENIED = "access-denied"  # ACCESS_DENIED: the authorizer's policy does not allow the method
    EXPLICIT_DENY = "explicit-deny"  # ACCESS_DENIED by a Deny statement
    AUTHORIZER_FAILED = "authorizer-failed"  # AUTHORIZER_CONFIGURATION_ERROR / AUTHORIZER_FAILURE
    UNSIGNED = "unsigned"  # an AWS_IAM method called without a signature
    CACHE_CONTROL_DENIED = "cache-control-denied"  # Cache-Control: max-age=0 without authorization (FAIL_WITH_403)
    SHUTTING_DOWN = "shutting-down"
    INTERNAL = "internal"  # the emulator's own failure (logged with its traceback)


_MISSING_TOKEN = (403, b'{"message":"Missing Authentication Token"}', "MissingAuthenticationTokenException")
_INTERNAL_REST = b'{"message": "Internal server error"}'
REST_ANSWERS: dict[Answer, tuple[int, bytes, str]] = {
    Answer.MISSING_ROUTE: _MISSING_TOKEN,
    Answer.UNKNOWN_API: (404, b'{"message":"Not Found"}', "NotFoundException"),
    Answer.FORBIDDEN: (403, b'{"message":"Forbidden"}', "ForbiddenException"),
    Answer.THROTTLED: (429, b'{"message":"Too Many Requests"}', "TooManyRequestsException"),
    Answer.QUOTA_EXCEEDED: (429, b'{"message":"Limit Exceeded"}', "LimitExceededException"),
    Answer.LAMBDA_THROTTLED: (500, _INTERNAL_REST, "InternalServerErrorException"),
    Answer.LAMBDA_REFUSED: (500, _INTERNAL_REST, "InternalServerErrorException"),
    Answer.BAD_RESPONSE: (502, _INTERNAL_REST, "InternalServerErrorException"),
    Answer.TIMEOUT: (504, b'{"message": "Endpoint request timed out"}', "InternalServerErrorException"),
    Answer.TOO_LARGE: (413, b'{"message":"Request Too Long"}', "RequestTooLongException"),
    Answer.NOT_CONFIGURED: (500, _INTERNAL_REST, "InternalServerErrorException"),
    Answer.UNAUTHORIZED: (401, b'{"message":"Unauthorized"}', "UnauthorizedException"),
    Answer.ACCESS_DENIED: (403, b'{"Message":"User is not authorized to access this resource"}', "AccessDeniedException"),
    Answer.EXPLICIT_DENY: (403, b'{"Message":"User is not authorized to access this resource with an explicit deny"}',
                           "AccessDeniedException"),
    Answer.AUTHORIZER_FAILED: (500, b'{"message": null}', "AuthorizerConfigurationException"),
    Answer.UNSIGNED: _MISSING_TOKEN,
    Answer.CACHE_CONTROL_DENIED: (403, b'{"Message":"User is not authorized to access this resource"}',
                                  "AccessDeniedException"),
    Answer.SHUTTING_DOWN: (503, b'{"message":"Service Unavailable"}', "ServiceUnavailableException"),
    Answer.INTERNAL: (500, _INTERNAL_REST, "InternalServerErrorException"),
}
_INTERNAL_HTTP = b'{"message":"Internal Server Error"}'
HTTP_ANSWERS: dict[Answer, tuple[int, bytes]] = {
    Answer.MISSING_ROUTE: (404, b'{"message":"Not Found"}'),
    Answer.UNKNOWN_API: (404, b'{"message":"Not Found"}'),
    Answer.FORBIDDEN: (403, b'{"message":"Forbidden"}'),
    Answer.THROTTLED: (429, b'{"message":"Too Many Requests"}'),
    Answer.QUOTA_EXCEEDED: (429, b'{"message":"Limit Exceeded"}'),
    Answer.LAMBDA_THROTTLED: (500, _INTERNAL_HTTP),
    Answer.LAMBDA_REFUSED: (500, _INTERNAL_HTTP),
    Answer.BAD_RESPONSE: (500, _INTERNAL_HTTP),
    Answer.TIMEOUT: (503, b'{"message":"Service Unavailable"}'),
    Answer.TOO_LARGE: (413, b'{"message":"Request Entity Too Large"}'),
    Answer.NOT_CONFIGURED: (500, _INTERNAL_HTTP),
    Answer.UNAUTHORIZED: (401, b'{"message":"Unauthorized"}'),
    Answer.ACCESS_DENIED: (403, b'{"message":"Forbidden"}'),
    Answer.EXPLICIT_DENY: (403, b'{"message":"Forbidden"}'),
    Answer.AUTHORIZER_FAILED: (500, _INTERNAL_HTTP),
    Answer.UNSIGNED: (403, b'{"message":"Forbidden"}'),
    Answer.CACHE_CONTROL_DENIED: (403, b'{"message":"Forbidden"}'),
    Answer.SHUTTING_DOWN: (503, b'{"message":"Service Unavailable"}'),
    Answer.INTERNAL: (500, _INTERNAL_HTTP),
}
# The body that goes with a status chosen for a Lambda throttle (--api-lambda-throttle-status).
_BODY_FOR_STATUS = {
    REST: {429: REST_ANSWERS[Answer.THROTTLED][1], 502: _INTERNAL_REST, 503: b'{"message":"Service Unavailable"}',
           504: REST_ANSWERS[Answer.TIMEOUT][1]},
    "HTTP": {429: HTTP_ANSWERS[Answer.THROTTLED][1], 503: b'{"message":"Service Unavailable"}',
             504: b'{"message":"Service Unavailable"}'},
}
LAMBDA_THROTTLE_STATUSES = (500, 502, 503, 504, 429)


def id_headers(kind: str, request_id: str, extended_request_id: str) -> list[tuple[str, str]]:
    """The ids API Gateway puts on every answer: REST `x-amzn-RequestId` and `x-amz-apigw-id`,
    HTTP APIs `apigw-requestid`."""
    if kind == REST:
        return [("x-amzn-RequestId", request_id), ("x-amz-apigw-id", extended_request_id)]
    return [("apigw-requestid", request_id)]


def gateway_answer(kind: str | None, answer: Answer, request_id: str, extended_request_id: str,
                   lambda_throttle_status: int | None = None) -> GatewayResponse:
    """API Gateway's own answer of this kind (REST when the API is unknown)."""
    kind = kind or REST
    headers = [("Content-Type", JSON)]
    if kind == REST:
        status, body, error_type = REST_ANSWERS[answer]
        headers.append(("x-amzn-ErrorType", error_type))
    else:
        status, body = HTTP_ANSWERS[answer]
    if answer is Answer.LAMBDA_THROTTLED and lambda_throttle_status and lambda_throttle_status != status:
        status = lambda_throttle_status
        body = _BODY_FOR_STATUS[kind].get(status, body)
    headers.extend(id_headers(kind, request_id, extended_request_id))
    return GatewayResponse(status, headers, body)
