"""API Gateway's own answers (emulator/apigateway/answers.py)."""

from __future__ import annotations

import json

from emulator.apigateway.answers import HTTP_ANSWERS, REST_ANSWERS, Answer, gateway_answer
from emulator.template.api_specs import HTTP, REST


def test_every_answer_exists_for_both_kinds_and_is_json_with_a_message() -> None:
    for answer in Answer:
        for status, body in (REST_ANSWERS[answer][:2], HTTP_ANSWERS[answer]):
            # AWS writes "Message" in its ACCESS_DENIED bodies (an authorizer's policy denied).
            assert 400 <= status < 600 and set(json.loads(body)) in ({"message"}, {"Message"})


def test_rest_answers_carry_the_error_type_and_both_ids() -> None:
    response = gateway_answer(REST, Answer.MISSING_ROUTE, "req", "ext=")
    assert (response.status, response.body) == (403, b'{"message":"Missing Authentication Token"}')
    assert dict(response.headers) == {"Content-Type": "application/json", "x-amzn-ErrorType": "MissingAuthenticationTokenException",
                                      "x-amzn-RequestId": "req", "x-amz-apigw-id": "ext="}


def test_http_answers_carry_only_apigw_requestid() -> None:
    response = gateway_answer(HTTP, Answer.TIMEOUT, "id=", "id=")
    assert (response.status, response.body) == (503, b'{"message":"Service Unavailable"}')
    assert dict(response.headers) == {"Content-Type": "application/json", "apigw-requestid": "id="}


def test_the_lambda_throttle_status_is_configurable_and_only_for_throttles() -> None:
    assert gateway_answer(REST, Answer.LAMBDA_THROTTLED, "r", "e").status == 500
    chosen = gateway_answer(REST, Answer.LAMBDA_THROTTLED, "r", "e", lambda_throttle_status=429)
    assert (chosen.status, chosen.body) == (429, b'{"message":"Too Many Requests"}')
    assert gateway_answer(REST, Answer.LAMBDA_REFUSED, "r", "e", lambda_throttle_status=429).status == 500
    assert gateway_answer(HTTP, Answer.LAMBDA_THROTTLED, "r", "e", lambda_throttle_status=503).body == b'{"message":"Service Unavailable"}'
