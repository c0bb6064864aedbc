"""Authorizers in the gateway's pipeline, just after the route (AWS authorizes a request
before its API key and throttles are checked; README 'Choices').

* Lambda authorizers (REST TOKEN and REQUEST, HTTP API REQUEST with payload 1.0 or 2.0):
  identity sources first: a missing one is 401 without invoking (a TOKEN authorizer's header
  also has to match its validation expression; a REST REQUEST authorizer checks its sources
  only when its results are cached, an HTTP API's always:
  https://repost.aws/knowledge-center/api-gateway-401-error-lambda-authorizer,
  https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-lambda-authorizer.html);
  then the result cached for this identity, else an invocation through
  `LambdaService.invoke` (the same reserved and account concurrency as every function: a
  throttled authorizer is API Gateway's 500); then the answer's policy (or simple verdict)
  for the request's ARN, and its `principalId` and `context` into the integration's event.
* AWS_IAM: any SigV4-signed request passes (the signature is not verified); an unsigned one
  is 403 Missing Authentication Token. Cognito user pools and JWT authorizers: any request
  carrying the identity header passes, one without it is 401 (README).
"""

from __future__ import annotations

import json
import re
import time

from emulator.apigateway.answers import Answer
from emulator.apigateway.authorizer_events import authorizer_event, identity_values
from emulator.apigateway.caching import is_signed
from emulator.apigateway.events import AuthorizerOutcome, EventContext, GatewayResponse
from emulator.apigateway.pipeline import Exchange, GatewayPipeline
from emulator.policy.api_cache import TtlCache
from emulator.policy.authorizer_policy import (
    UNAUTHORIZED_MESSAGE, AuthorizerAnswer, MalformedAuthorizerAnswer, Verdict, parse_answer, request_arn,
)
from emulator.template.api_specs import HTTP, IAM, REST, TOKEN, AuthorizerSpec

# Cached authorizer results per authorizer and stage, at most this many identities (the
# least recently used go first; AWS publishes no bound: README 'Choices').
AUTHORIZER_CACHE_ENTRIES = 100_000


def _error_message(payload: bytes) -> str | None:
    try:
        error = json.loads(payload)
    except ValueError:
        return None
    return error.get("errorMessage") if isinstance(error, dict) else None


class AuthorizerStage:
    def __init__(self, pipeline: GatewayPipeline) -> None:
        self.pipeline = pipeline
        self.caches: dict[tuple[str, str, str], TtlCache[AuthorizerAnswer]] = {}

    def install(self) -> None:
        self.pipeline.insert_after(self.pipeline.route, self.authorize)

    def reset(self) -> None:
        self.caches.clear()

    def _refuse(self, exchange: Exchange, result: str, answer: Answer, why: str, *args: object) -> GatewayResponse:
        exchange.authorizer_result = result
        self.pipeline.log_once(exchange, f"authorizer-{result}", why, *args)
        return self.pipeline.answer(exchange, answer)

    async def authorize(self, exchange: Exchange) -> GatewayResponse | None:
        match = exchange.match
        assert match is not None
        authorizer = match.route.authorizer
        if authorizer is None:
            return None
        request = exchange.request
        if authorizer.kind == IAM:
            if is_signed(request):
                return None
            return self._refuse(exchange, "unauthorized", Answer.UNSIGNED, "403: AWS_IAM authorization and the request "
                                "is not signed (SigV4)")
        settings = self.pipeline.settings
        context = EventContext(exchange.request_id, exchange.extended_request_id, settings.account_id, settings.region,
                               exchange.received_wall)
        values = identity_values(request, match, authorizer.identity_sources, context)
        missing = [source.declared for source, value in zip(authorizer.identity_sources, values) if not value]
        if not authorizer.is_lambda:  # Cognito, JWT: the token is not verified
            if missing:
                return self._refuse(exchange, "unauthorized", Answer.UNAUTHORIZED, "401: no %s", ", ".join(missing))
            return None
        if authorizer.kind == TOKEN or authorizer.api_kind == HTTP or authorizer.ttl_s > 0:
            if missing:
                return self._refuse(exchange, "unauthorized", Answer.UNAUTHORIZED,
                                    "401 without invoking authorizer %s: identity source %s missing or empty",
                                    authorizer.name, ", ".join(missing))
        if authorizer.kind == TOKEN and authorizer.validation_expression is not None:
            if re.fullmatch(authorizer.validation_expression, values[0] or "") is None:
                return self._refuse(exchange, "unauthorized", Answer.UNAUTHORIZED, "401 without invoking authorizer %s: "
                                    "the token does not match its validation expression", authorizer.name)
        arn = request_arn(settings.region, settings.account_id, match.api.api_id, match.stage.name, request.method,
                          match.path)
        cache = self._cache(exchange, authorizer) if authorizer.ttl_s > 0 and authorizer.identity_sources else None
        identity = tuple(values)
        now = self.pipeline.clock.now()
        answer = cache.get(identity, now) if cache is not None else None
        latency_ms = 0
        if answer is not None:
            exchange.authorizer_result = "cached"
        else:
            started = time.perf_counter()
            outcome = await self.pipeline.invoke(authorizer.function or "", authorizer.qualifier,
                                                 json.dumps(authorizer_event(authorizer, request, match, context, arn,
                                                                             values)).encode())
            latency_ms = int((time.perf_counter() - started) * 1000)
            if isinstance(outcome, Answer):
                throttled = outcome is Answer.LAMBDA_THROTTLED
                return self._refuse(exchange, "throttled" if throttled else "failed", Answer.AUTHORIZER_FAILED,
                                    "500: authorizer %s %s", authorizer.name,
                                    "was throttled by Lambda" if throttled else "could not be invoked")
            if outcome.function_error:
                if _error_message(outcome.payload) == UNAUTHORIZED_MESSAGE:
                    return self._refuse(exchange, "unauthorized", Answer.UNAUTHORIZED, "401: authorizer %s answered "
                                        "Unauthorized", authorizer.name)
                return self._refuse(exchange, "failed", Answer.AUTHORIZER_FAILED, "500: authorizer %s failed (%s)",
                                    authorizer.name, outcome.error_type)
            try:
                answer = parse_answer(outcome.payload, simple=authorizer.simple_responses,
                                      flat_context=authorizer.api_kind == REST)
            except MalformedAuthorizerAnswer as exc:
                return self._refuse(exchange, "failed", Answer.AUTHORIZER_FAILED, "500: authorizer %s answered "
                                    "something API Gateway does not accept: %s", authorizer.name, exc)
            exchange.authorizer_result = "invoked"
            if cache is not None:
                cache.put(identity, answer, 1, authorizer.ttl_s, now)
        try:
            verdict = answer.verdict(arn)
        except MalformedAuthorizerAnswer as exc:
            return self._refuse(exchange, "failed", Answer.AUTHORIZER_FAILED, "500: authorizer %s: %s", authorizer.name, exc)
        if verdict is not Verdict.ALLOW:
            return self._refuse(exchange, "denied", Answer.EXPLICIT_DENY if verdict is Verdict.EXPLICIT_DENY
                                else Answer.ACCESS_DENIED, "403: authorizer %s's policy does not allow %s (%s)",
                                authorizer.name, arn, verdict.value)
        exchange.authorizer = AuthorizerOutcome(answer.principal_id, answer.context, latency_ms,
                                                simple=answer.authorized is not None)
        return None

    def _cache(self, exchange: Exchange, authorizer: AuthorizerSpec) -> TtlCache[AuthorizerAnswer]:
        match = exchange.match
        assert match is not None
        key = (match.api.api_id, match.stage.name, authorizer.authorizer_id)
        cache = self.caches.get(key)
        if cache is None:
            cache = self.caches[key] = TtlCache(AUTHORIZER_CACHE_ENTRIES)
        return cache
