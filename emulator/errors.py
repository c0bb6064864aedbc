"""Typed AWS errors: each subclass carries the code and HTTP status as data.

Status codes follow the Lambda API model
(https://github.com/boto/botocore/blob/develop/botocore/data/lambda/2015-03-31/service-2.json). `to_response_parts`
is the one place they become HTTP: header `x-amzn-ErrorType`, body `{"Type", "message"}`,
which botocore's rest-json parser turns into the right exception class.
"""

from __future__ import annotations

import json
import uuid
from typing import Any


class AwsError(Exception):
    code = "ServiceException"
    status = 500
    blame = "Service"  # AWS's "Type": "User" for caller errors, "Service" for ours

    def __init__(self, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields
        self.headers: dict[str, str] = {}

    def body(self) -> dict[str, Any]:
        return {"Type": self.blame, "message": self.message, **self.fields}

    def to_response_parts(self) -> tuple[int, dict[str, str], bytes]:
        headers = {
            "x-amzn-ErrorType": self.code,
            "x-amzn-RequestId": str(uuid.uuid4()),
            "Content-Type": "application/json",
            **self.headers,
        }
        return self.status, headers, json.dumps(self.body()).encode()


class UserError(AwsError):
    blame = "User"


class InvalidParameterValue(UserError):
    code = "InvalidParameterValueException"
    status = 400


class InvalidRequestContent(UserError):
    code = "InvalidRequestContentException"
    status = 400


class ValidationError(UserError):
    code = "ValidationException"
    status = 400


class ResourceNotFound(UserError):
    code = "ResourceNotFoundException"
    status = 404


class ResourceConflict(UserError):
    code = "ResourceConflictException"
    status = 409


class ResourceInUse(UserError):
    code = "ResourceInUseException"
    status = 400


class RequestTooLarge(UserError):
    code = "RequestTooLargeException"
    status = 413


class PreconditionFailed(UserError):
    """A RevisionId that is not the resource's current one (the Lambda API model)."""

    code = "PreconditionFailedException"
    status = 412


class RequestEntityTooLarge(UserError):
    """A deployment package upload over Lambda's request limit; Lambda answers this code
    (users' error output: "RequestEntityTooLargeException ... Request must be smaller than
    69905067 bytes for the CreateFunction operation"); botocore maps status 413 to its
    RequestTooLargeException class."""

    code = "RequestEntityTooLargeException"
    status = 413


class TooManyRequests(UserError):
    """429 with Reason, Type User, message "Rate Exceeded." and Retry-After.

    Members from the Lambda API model
    (https://docs.aws.amazon.com/botocore/latest/reference/services/lambda/client/exceptions/TooManyRequestsException.html);
    the body's Type and message as AWS sends them (observed in users' error output).
    """

    code = "TooManyRequestsException"
    status = 429

    def __init__(self, reason: str, retry_after_s: int = 1) -> None:
        super().__init__("Rate Exceeded.", Reason=reason)
        self.reason = reason
        self.headers["Retry-After"] = str(retry_after_s)


class ServiceError(AwsError):
    code = "ServiceException"
    status = 500


class UnknownOperation(UserError):
    code = "UnknownOperationException"
    status = 404
