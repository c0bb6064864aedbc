"""SNS filter policies: AWS's error messages (recorded from AWS: LocalStack's AWS-validated
snapshots, tests/aws/services/sns/test_sns_filter_policy.snapshot.json in
localstack/localstack) and the matching rules of the SNS developer guide
(https://docs.aws.amazon.com/sns/latest/dg/sns-subscription-filter-policies.html and its
sub-pages), in pure code."""

from __future__ import annotations

import json

import pytest

from emulator.patterns.sns_policy import (
    MAX_POLICY_BYTES,
    FilterPolicyError,
    Outcome,
    PublishedMessage,
    combinations,
    parse_policy,
)

# (policy, Event Ruler's message, Jackson's column), each as AWS answered it.
RECORDED_ERRORS = [
    ('{"key":[["value"]]}', "Match value must be String, number, true, false, or null", 10),
    ('{"key":[{"wrong-operator":true}]}', "Unrecognized match type wrong-operator", 31),
    ('{"key":[{"suffix":"value","prefix":"value2"}]}', "Only one key allowed in match expression", 37),
    ('{"key":[{"suffix":100}]}', "suffix match pattern must be a string", 22),
    ('{"key":[{"suffix":null}]}', "suffix match pattern must be a string", 23),
    ('{"key":{"suffix":"value"}}', '"suffix" must be an object or an array', 19),
    ('{"key":[{"suffix":[]}]}', "suffix match pattern must be a string", 20),
    ('{"key":[{"suffix":["test","test2"]}]}', "suffix match pattern must be a string", 20),
    ('{"key":{"suffix":"value","prefix":"value"}}', '"suffix" must be an object or an array', 19),
    ('{"key":{"not-an-operator":"value"}}', '"not-an-operator" must be an object or an array', 28),
    ('{"key":[{"numeric":[]}]}', "Invalid member in numeric match: ]", 22),
    ('{"key":[{"numeric":["operator"]}]}', "Unrecognized numeric range operator: operator", 32),
    ('{"key":[{"numeric":[1,"<="]}]}', "Invalid member in numeric match: 1", 22),
    ('{"key":[{"numeric":["=","000"]}]}', "Value of equals must be numeric", 26),
    ('{"key":[{"numeric":[">="]}]}', "Value of >= must be numeric", 26),
    ('{"key":[{"numeric":["<",100,">",10]}]}', "Too many elements in numeric expression", 30),
    ('{"key":[{"numeric":[">=",1,">",2]}]}', "Bad numeric range operator: >", 31),
    ('{"key":[{"numeric":[">",3,"<",1]}]}', "Bottom must be less than top", 33),
    ('{"key":[{"numeric":[">",20,"<="]}]}', "Value of <= must be numeric", 33),
    ('{"key":[{"numeric":[">",20,30]}]}', "Bad value in numeric range: 30", 30),
    ('{"key":[{"numeric":[">",20,"test"]}]}', "Bad numeric range operator: test", 34),
    ('{"key":[{"numeric":[">","20","<","30"]}]}', "Value of > must be numeric", 26),
    ('{"key":[{"numeric":[">",20,"<","30"]}]}', "Value of < must be numeric", 33),
    ('{"key":[{"numeric":[">",20,"<",30,"<",50]}]}', "Too many terms in numeric range expression", 36),
    ('{"key":[{"exists":null}]}', "exists match pattern must be either true or false.", 23),
    ('{"key":[{"exists":"no"}]}', "exists match pattern must be either true or false.", 20),
    ('{"key":[{"anything-but":{"wrong-operator":null}}]}', "Unsupported anything-but pattern: wrong-operator", 47),
    ('{"key":[{"anything-but":{"suffix":"test"}}]}', "Unsupported anything-but pattern: suffix", 36),
    ('{"key":[{"anything-but":{"exists":false}}]}', "Unsupported anything-but pattern: exists", 40),
    ('{"key":[{"anything-but":{"prefix":false}}]}', "prefix match pattern must be a string", 40),
    ('{"key_a":"value_one"}', '"key_a" must be an object or an array', 11),
]


@pytest.mark.parametrize(("policy", "message", "column"), RECORDED_ERRORS)
def test_refusals_carry_aws_message_and_parser_location(policy: str, message: str, column: int) -> None:
    with pytest.raises(FilterPolicyError) as caught:
        parse_policy(policy, "MessageBody")
    assert caught.value.detail == f'FilterPolicy: {message}\n at [Source: (String)"{policy}"; line: 1, column: {column}]'


def test_location_counts_lines_as_jackson_does() -> None:
    policy = '{\n  "a": ["x"],\n  "b": [{"prefix": 1}]\n}'
    with pytest.raises(FilterPolicyError) as caught:
        parse_policy(policy)
    assert caught.value.detail.endswith("; line: 3, column: 21]")


def test_long_policies_are_shown_truncated_in_the_location() -> None:
    policy = json.dumps({"a": ["x" * 600], "b": [{"prefix": 1}]}, separators=(",", ":"))
    with pytest.raises(FilterPolicyError) as caught:
        parse_policy(policy)
    assert f'"[truncated {len(policy) - 500} chars]; line: 1' in caught.value.detail


def test_structure_limits_have_no_location() -> None:
    six_keys = json.dumps({f"k{i}": ["v"] for i in range(6)})
    with pytest.raises(FilterPolicyError) as caught:
        parse_policy(six_keys)
    assert caught.value.detail == "FilterPolicy: Filter policy can not have more than 5 keys"
    too_complex = json.dumps({"a": [str(i) for i in range(151)]})
    with pytest.raises(FilterPolicyError) as caught:
        parse_policy(too_complex)
    assert caught.value.detail == "FilterPolicy: Filter policy is too complex"
    with pytest.raises(FilterPolicyError) as caught:
        parse_policy('{"object": {"key": [{"prefix": "auto-"}]}}', "MessageAttributes")
    assert caught.value.detail == "Filter policy scope MessageAttributes does not support nested filter policy"


def test_at_the_limits_policies_are_accepted() -> None:
    parse_policy(json.dumps({f"k{i}": ["v"] for i in range(5)}))
    parse_policy(json.dumps({"a": [str(i) for i in range(150)]}))
    parse_policy(json.dumps({"a": [str(i) for i in range(10)], "b": [str(i) for i in range(15)]}))
    parse_policy('{"object": {"key": [{"prefix": "auto-"}]}}', "MessageBody")


def test_complexity_follows_the_constraints_page() -> None:
    # "3 x 4 x 2 x 3 = 72": four values three levels down, three values two levels down.
    nested = {"key_a": {"key_b": {"key_c": ["1", "2", "3", "4"]}}, "key_d": {"key_e": ["1", "2", "3"]}}
    assert combinations(nested) == 72
    # The product of the numbers of values: 3 x 1 x 2.
    assert combinations({"key_a": ["1", "2", "3"], "key_b": ["1"], "key_c": ["1", "2"]}) == 6
    # The branches of a $or add up.
    assert combinations({"a": ["1", "2"], "$or": [{"b": ["1", "2", "3"]}, {"c": ["1"]}]}) == 8


def test_json_size_scope_and_empty_policies() -> None:
    with pytest.raises(FilterPolicyError) as caught:
        parse_policy("{invalidjson}")
    assert caught.value.detail == "FilterPolicy: failed to parse JSON."
    with pytest.raises(FilterPolicyError) as caught:
        parse_policy('{"a": [NaN]}')
    assert caught.value.detail == "FilterPolicy: failed to parse JSON."
    with pytest.raises(FilterPolicyError) as caught:
        parse_policy('{"a": ["' + "x" * MAX_POLICY_BYTES + '"]}')
    assert "larger than" in caught.value.detail
    with pytest.raises(FilterPolicyError) as caught:
        parse_policy('{"a": ["x"]}', "RandomValue")
    assert caught.value.detail == ("FilterPolicyScope: Invalid value [RandomValue]. Please use either MessageBody "
                                   "or MessageAttributes")
    assert parse_policy("{}").decide(PublishedMessage("x", {})) is Outcome.MATCHED


@pytest.mark.parametrize(("policy", "message"), [
    ('{"a": [{"numeric": [">", 1e10]}]}', "Value must be between -5.0E9 and 5.0E9, inclusive"),
    ('{"a": [{"anything-but": [1, "x"]}]}', "Inside anything but list, either all values are number or string, mixed "
                                            "type is not supported"),
    ('{"a": [{"anything-but": [true]}]}', "Inside anything but list, start|null|boolean is not supported."),
    ('{"a": [{"anything-but": null}]}', "Value of anything-but must be an array or single string/number value."),
    ('{"a": [{"anything-but": {"equals-ignore-case": "x"}}]}', "Unsupported anything-but pattern: equals-ignore-case"),
    ('{"a": [{"anything-but": {"prefix": ""}}]}', "Null prefix not allowed"),
    ('{"a": [{"equals-ignore-case": 1}]}', "equals-ignore-case match pattern must be a string"),
    ('{"a": [{"cidr": 1}]}', "prefix match pattern must be a string"),
    ('{"a": [{"wildcard": "x*"}]}', "Unrecognized match type wildcard"),
    ('{"a": [{}]}', "Match expression name not found"),
    ('{"a": []}', "Empty arrays are not allowed"),
    ('{"a": {}}', "Empty objects are not allowed"),
    ('{"a": [{"numeric": "x"}]}', "Value of numeric must be an array."),
    ('{"a": [{"exists": true, "prefix": "x"}]}', "Only one key allowed in match expression"),
])
def test_event_ruler_refusals(policy: str, message: str) -> None:
    with pytest.raises(FilterPolicyError) as caught:
        parse_policy(policy, "MessageBody")
    assert caught.value.detail.startswith(f"FilterPolicy: {message}\n at [Source: ")


@pytest.mark.parametrize(("cidr", "message"), [
    ("10.0.0.0", "Malformed CIDR, one '/' required"),
    ("10.0.0.0/24/1", "Malformed CIDR, one '/' required"),
    ("10.0.0.0/x", "Malformed CIDR, mask bits must be an integer"),
    ("10.0.0.0/-1", "Malformed CIDR, mask bits must not be negative"),
    ("10.0.0.0/32", "IPv4 mask bits must be < 32"),
    ("2001:db8::/128", "IPv6 mask bits must be < 128"),
    ("host/24", "Nonstandard IP address: host"),
    ("999.0.0.1/24", "Invalid IP address: 999.0.0.1"),
])
def test_cidr_refusals_have_no_location(cidr: str, message: str) -> None:
    with pytest.raises(FilterPolicyError) as caught:
        parse_policy(json.dumps({"ip": [{"cidr": cidr}]}))
    assert caught.value.detail == f"FilterPolicy: {message}"


def test_or_needs_two_objects_else_it_is_a_field_name() -> None:
    # One object: the $or-aware compiler refuses it; as an ordinary field it holds a match
    # expression named "a", which Event Ruler does not know.
    with pytest.raises(FilterPolicyError) as caught:
        parse_policy('{"$or": [{"a": ["x"]}]}')
    assert caught.value.detail.startswith("FilterPolicy: Unrecognized match type a")
    # Reserved names inside $or: refused by both readings (the docs' own example).
    with pytest.raises(FilterPolicyError):
        parse_policy('{"$or": [{"numeric": 123}, {"prefix": "abc"}]}')
    # A list of values under "$or" is an ordinary attribute named "$or".
    policy = parse_policy('{"$or": ["x"]}')
    assert policy.decide(_attrs({"$or": ("String", "x")})) is Outcome.MATCHED


# -- matching ------------------------------------------------------------------------------------
def _attrs(values: dict[str, tuple[str, str]]) -> PublishedMessage:
    return PublishedMessage("body", {name: {"Type": kind, "Value": value} for name, (kind, value) in values.items()})


def _body(document: object) -> PublishedMessage:
    return PublishedMessage(json.dumps(document), {})


def _match(policy: object, message: PublishedMessage, scope: str = "MessageAttributes") -> bool:
    return parse_policy(json.dumps(policy), scope).decide(message) is Outcome.MATCHED


STRING = "String"


@pytest.mark.parametrize(("policy", "value", "kind", "expected"), [
    # Exact matching (string-value-matching.html).
    ({"ci": ["rugby", "tennis"]}, "rugby", STRING, True),
    ({"ci": ["rugby", "tennis"]}, "baseball", STRING, False),
    ({"ci": ["rugby", "tennis"]}, '["rugby", "x"]', "String.Array", True),
    ({"ci": ["rugby", "tennis"]}, '["baseball"]', "String.Array", False),
    ({"ci": ["Rugby"]}, "rugby", STRING, False),  # case-sensitive
    # Anything-but.
    ({"ci": [{"anything-but": ["rugby", "tennis"]}]}, "baseball", STRING, True),
    ({"ci": [{"anything-but": ["rugby", "tennis"]}]}, "rugby", STRING, False),
    ({"ci": [{"anything-but": ["rugby", "tennis"]}]}, '["rugby", "baseball"]', "String.Array", True),
    ({"ci": [{"anything-but": "rugby"}]}, "tennis", STRING, True),
    ({"ci": [{"anything-but": {"prefix": "bas"}}]}, "rugby", STRING, True),
    ({"ci": [{"anything-but": {"prefix": "bas"}}]}, "baseball", STRING, False),
    # Prefix, suffix, equals-ignore-case.
    ({"ci": [{"prefix": "bas"}]}, "basketball", STRING, True),
    ({"ci": [{"prefix": "bas"}]}, "rugby", STRING, False),
    ({"ci": [{"suffix": "ball"}]}, "baseball", STRING, True),
    ({"ci": [{"suffix": "ball"}]}, "rugby", STRING, False),
    ({"ci": [{"equals-ignore-case": "tennis"}]}, "TeNNis", STRING, True),
    ({"ci": [{"equals-ignore-case": "tennis"}]}, "tennis!", STRING, False),
    # Numbers (numeric-value-matching.html): by value, to six decimals.
    ({"price": [{"numeric": ["=", 301.5]}]}, "301.5", "Number", True),
    ({"price": [{"numeric": ["=", 301.5]}]}, "3.015e2", "Number", True),
    ({"price": [301.5]}, "301.50", "Number", True),
    ({"price": [5]}, "5", STRING, False),  # a string is not a number
    ({"price": ["5"]}, "5", "Number", False),  # nor a number a string
    ({"price": [{"numeric": [">", 0, "<=", 150]}]}, "150", "Number", True),
    ({"price": [{"numeric": [">", 0, "<=", 150]}]}, "0", "Number", False),
    ({"price": [{"numeric": [">", 0, "<=", 150]}]}, "150.0000001", "Number", True),  # within six decimals
    ({"price": [{"numeric": [">", 0, "<=", 150]}]}, "150.000002", "Number", False),
    ({"price": [{"numeric": [">", 0]}]}, "10", STRING, False),
    ({"price": [{"numeric": ["<", 0]}]}, "-1e9", "Number", True),
    ({"price": [{"anything-but": [100, 500]}]}, "101", "Number", True),
    ({"price": [{"anything-but": [100, 500]}]}, "100.0", "Number", False),
    ({"price": [{"anything-but": [100, 500]}]}, "abc", STRING, False),
    ({"price": [{"numeric": [">", 10]}]}, "[5, 20]", "String.Array", True),
    # Custom data types keep their base type.
    ({"price": [{"numeric": [">", 10]}]}, "20", "Number.float", True),
    ({"ci": ["x"]}, "x", "String.custom", True),
    # IP addresses (string-value-matching.html, IP address matching).
    ({"ip": [{"cidr": "10.0.0.0/24"}]}, "10.0.0.255", STRING, True),
    ({"ip": [{"cidr": "10.0.0.0/24"}]}, "10.0.1.0", STRING, False),
    ({"ip": [{"cidr": "2001:db8::/32"}]}, "2001:db8::1", STRING, True),
    ({"ip": [{"cidr": "10.0.0.0/24"}]}, "2001:db8::1", STRING, False),
    ({"ip": ["10.0.0.1"]}, "10.0.0.1", STRING, True),
    ({"ip": ["::1"]}, "0:0:0:0:0:0:0:1", STRING, True),
    # Literals.
    ({"flag": [True]}, "[true]", "String.Array", True),
    ({"flag": [None]}, "[null]", "String.Array", True),
    ({"flag": [None]}, "null", STRING, False),
    # Characters SNS asks to double-escape.
    ({"q": ['say \\"hi\\"']}, 'say "hi"', STRING, True),
    ({"q": ['say "hi"']}, 'say "hi"', STRING, False),
])
def test_attribute_matching(policy: dict, value: str, kind: str, expected: bool) -> None:
    name = next(iter(policy))
    assert _match(policy, _attrs({name: (kind, value)})) is expected


def test_key_matching_and_binary_attributes() -> None:
    # attribute-key-matching.html
    assert _match({"store": [{"exists": True}]}, _attrs({"store": (STRING, "x")}))
    assert not _match({"store": [{"exists": True}]}, _attrs({"other": (STRING, "x")}))
    assert _match({"store": [{"exists": False}]}, _attrs({"other": (STRING, "x")}))
    assert not _match({"store": [{"exists": False}]}, _attrs({"store": (STRING, "x")}))
    # Binary attributes are ignored.
    assert not _match({"blob": [{"exists": True}]}, _attrs({"blob": ("Binary", "AAEC")}))
    # anything-but needs the attribute, unless combined with exists: false.
    assert not _match({"a": [{"anything-but": ["x"]}]}, _attrs({"b": (STRING, "y")}))
    assert _match({"a": [{"anything-but": ["x"]}, {"exists": False}]}, _attrs({"b": (STRING, "y")}))


def test_and_or_logic() -> None:
    # and-or-logic.html
    policy = {"customer_interests": ["rugby"], "price_usd": [{"numeric": [">", 100]}]}
    assert _match(policy, _attrs({"customer_interests": (STRING, "rugby"), "price_usd": ("Number", "101")}))
    assert not _match(policy, _attrs({"customer_interests": (STRING, "rugby"), "price_usd": ("Number", "100")}))
    assert not _match(policy, _attrs({"customer_interests": (STRING, "rugby")}))
    either = {"source": ["aws.cloudwatch"], "$or": [{"metricName": ["CPUUtilization"]}, {"namespace": ["AWS/EC2"]}]}
    assert _match(either, _attrs({"source": (STRING, "aws.cloudwatch"), "namespace": (STRING, "AWS/EC2")}))
    assert _match(either, _attrs({"source": (STRING, "aws.cloudwatch"), "metricName": (STRING, "CPUUtilization")}))
    assert not _match(either, _attrs({"source": (STRING, "aws.cloudwatch"), "metricName": (STRING, "ReadLatency")}))
    assert not _match(either, _attrs({"namespace": (STRING, "AWS/EC2")}))


def test_payload_matching_with_nesting_dots_and_arrays() -> None:
    body = "MessageBody"
    policy = {"object": {"key": [{"prefix": "auto-"}]}}
    assert _match(policy, _body({"object": {"key": "auto-test"}}), body)
    assert not _match(policy, _body({"object": {"key": "home-test"}}), body)
    # A dotted name in the policy or in the body is the same field as the nesting
    # (recorded from AWS: test_filter_policy_on_message_body_dot_attribute).
    dotted = {"object.nested": ["string.value"]}
    assert _match(dotted, _body({"object": {"nested": "string.value"}}), body)
    assert _match(dotted, _body({"object.nested": "string.value"}), body)
    assert _match({"object": {"nested": ["string.value"]}}, _body({"object.nested": "string.value"}), body)
    # Arrays: each element is a value; arrays of objects flatten into their fields.
    routes = {"headers": {"route-to": ["queue1"]}}
    assert _match(routes, _body({"headers": {"route-to": ["queue1", "queue2"]}}), body)
    assert not _match(routes, _body({"headers": {"route-to": ["queue2"]}}), body)
    s3 = {"Records": {"s3": {"object": {"key": [{"prefix": "auto-"}]}}, "eventName": [{"prefix": "ObjectCreated:"}]}}
    assert _match(s3, _body({"Records": [{"eventName": "ObjectCreated:Put", "s3": {"object": [[{"key": "auto-1"}]]}}]}),
                  body)
    # Fields of one policy must come from the same array element.
    same = {"a": {"b": [1], "c": [2]}}
    assert _match(same, _body({"a": [{"b": 1, "c": 2}, {"b": 3, "c": 4}]}), body)
    assert not _match({"a": {"b": [1], "c": [4]}}, _body({"a": [{"b": 1, "c": 2}, {"b": 3, "c": 4}]}), body)
    # exists is about leaves: an object is not one.
    assert not _match({"object": [{"exists": True}]}, _body({"object": {"key": "x"}}), body)


def test_outcomes_name_the_filtered_out_metrics() -> None:
    attributes = parse_policy('{"a": ["x"]}')
    assert attributes.decide(_attrs({"a": (STRING, "y")})) is Outcome.ATTRIBUTES
    assert attributes.decide(PublishedMessage("m", {})) is Outcome.NO_ATTRIBUTES
    assert attributes.decide(_attrs({"a": ("String.Array", "not json")})) is Outcome.INVALID_ATTRIBUTES
    payload = parse_policy('{"a": ["x"]}', "MessageBody")
    assert payload.decide(PublishedMessage("not json", {})) is Outcome.INVALID_BODY
    assert payload.decide(PublishedMessage("[1, 2]", {})) is Outcome.INVALID_BODY
    assert payload.decide(_body({"a": "y"})) is Outcome.BODY
    assert payload.decide(_body({"a": "x"})) is Outcome.MATCHED


def test_message_documents_are_decoded_once() -> None:
    message = _body({"a": "x"})
    assert message.body_document() is message.body_document()
