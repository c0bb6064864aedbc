"""The moto releases our patches were checked against (imports nothing of moto, so the
control plane may read it)."""

from __future__ import annotations

# Read against these releases' moto/sqs/models.py, sqs/responses.py, core/responses.py,
# moto_server/werkzeug_app.py and werkzeug 3.1's serving.py; for fast_kinesis.py, moto/kinesis/
# models.py, responses.py, utils.py, exceptions.py and cloudwatch/models.py; for sns_wire.py,
# moto/sns/responses.py, models.py, core/parse.py (QueryParser), core/serialize.py
# (QuerySerializer, with xmltodict 1.0) and core/utils.py (convert_to_flask_response).
VERIFIED_MOTO_VERSIONS = ("5.2.5",)


def is_verified(version: str) -> bool:
    return version in VERIFIED_MOTO_VERSIONS


def installed_moto_version() -> str | None:
    """moto's version without importing it (the emulator's process never imports moto)."""
    from importlib import metadata

    try:
        return metadata.version("moto")
    except metadata.PackageNotFoundError:
        return None
