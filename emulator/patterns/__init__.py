"""The event-pattern language of SNS filter policies and Lambda event filters, pure.

AWS evaluates both with the same rule language (AWS's open-source Event Ruler,
https://github.com/aws/event-ruler, behind EventBridge patterns), with differences per
service: SNS compares numbers by value and knows fewer `anything-but` forms; Lambda compares
numbers by their text and says only "Invalid filter pattern definition." when a pattern is
wrong. This package is that language in our own code:

* `reader`: a JSON token reader that knows where it is as Jackson (the JSON parser AWS's
  Java services use) would, so that SNS's error messages carry the same line and column;
* `compiler`: a pattern text into branches of (field path, matchers), with AWS's errors;
* `matching`: a compiled pattern against a JSON document;
* `sns_policy` and `event_filter`: the rules each service adds around the language.

It imports nothing but the standard library, so that the moto child (which decides SNS's
SQS deliveries) and the control plane (Lambda deliveries, pollers) share one implementation.
"""
