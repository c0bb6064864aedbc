"""SNS envelopes with the SignatureVersion AWS uses (imported only inside moto's process).

SNS signs each notification with SHA1 ("SignatureVersion": "1") unless the topic's
`SignatureVersion` attribute is "2" (SHA256):
https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html. moto 5.2
always writes "2", so code that checks the envelope it finds in an SQS message (Lambda
Powertools' SNS models, signature verifiers) sees a version a default topic never sends.
The envelope is signed again here, over the fields and in the order the page above lists
for a Notification, with the algorithm of the topic's version.
"""

from __future__ import annotations

import base64
from typing import Any, Callable

DEFAULT_SIGNATURE_VERSION = "1"
# The fields signed for a Notification, in order (the page above); Subject only if present.
_SIGNED_FIELDS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")


def string_to_sign(envelope: dict[str, Any]) -> str:
    return "".join(f"{name}\n{envelope[name]}\n" for name in _SIGNED_FIELDS if name in envelope)


def signed_post_data() -> Callable[..., dict[str, Any]]:
    """A Subscription.get_post_data that signs with the topic's SignatureVersion."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from moto.sns.models import Subscription

    original = Subscription.get_post_data

    def get_post_data(self: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        envelope = original(self, *args, **kwargs)
        # moto keeps topic attributes under their snake_case names (set_topic_attributes).
        version = str(getattr(self.topic, "signature_version", None) or DEFAULT_SIGNATURE_VERSION)
        algorithm = hashes.SHA256() if version == "2" else hashes.SHA1()  # noqa: S303 (SNS's own choice)
        signature = self.private_key().sign(string_to_sign(envelope).encode("utf-8"), padding.PKCS1v15(), algorithm)
        envelope["SignatureVersion"] = "2" if version == "2" else "1"
        envelope["Signature"] = base64.b64encode(signature).decode("ascii")
        return envelope

    return get_post_data


def install(get_post_data: Callable[..., dict[str, Any]]) -> None:
    from moto.sns.models import Subscription

    Subscription.get_post_data = get_post_data
