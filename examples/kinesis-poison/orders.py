"""Payloads for load.yaml: order records, the 16th of them (index 15) malformed."""

POISON_INDEX = 15


def order(index, rng):
    if index == POISON_INDEX:
        return b"this is not an order"
    return {"order": index, "amount": rng.randint(100, 9_999)}
