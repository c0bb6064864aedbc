"""The sns-fanout-filters example as a test: every subscriber gets exactly what AWS's
filter rules give it, and SNS counts the rest as filtered out."""

from __future__ import annotations

from pathlib import Path

from drive_sns_fanout import expected, observed, orders, publish, settle, topic_counters

TEMPLATE = Path(__file__).parent / "template.yaml"
ORDERS = 60
WAIT_S = 30.0


def test_each_subscriber_gets_what_its_filter_lets_through(lambda_emulator_factory):
    emu = lambda_emulator_factory(TEMPLATE)
    sns = emu.client("sns")
    topic_arn = sns.create_topic(Name="orders")["TopicArn"]
    batch = orders(ORDERS)
    publish(sns, topic_arn, batch)
    want = expected(batch)
    metrics = settle(emu.metrics, topic_arn, want, WAIT_S)
    assert observed(metrics, topic_arn) == want
    # The predictions are not trivial: every filter keeps some orders and drops others.
    assert want["audit"] == {"delivered": ORDERS, "filtered_out": 0}
    assert all(0 < counts["delivered"] < ORDERS for name, counts in want.items() if name != "audit")
    assert 0 < want["refund-worker"]["filtered_out"] < want["refunds (queue)"]["delivered"]
    # Every delivered event ran (the direct subscribers' async events succeeded).
    functions = emu.metrics()["functions"]
    for name in ("audit", "big-orders", "eu-orders", "fulfilment"):
        assert functions[name]["AsyncEventsSucceeded"] == want[name]["delivered"]
    counters = topic_counters(metrics, topic_arn)
    assert counters["NumberOfMessagesPublished"] == ORDERS
    direct_out = sum(want[name]["filtered_out"] for name in ("big-orders", "eu-orders", "fulfilment"))
    assert counters["NumberOfNotificationsFilteredOut"] == direct_out + want["refunds (queue)"]["filtered_out"]
    assert counters["NumberOfNotificationsFilteredOut-MessageBody"] == want["eu-orders"]["filtered_out"]
