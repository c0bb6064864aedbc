"""A moto server, plain or with emulator/moto_child/fast_sqs.py, with one queue filled in-process.

    python bench/moto_prefilled.py --fast|--plain --queue NAME --messages N -p PORT

Plain moto cannot be filled to 100,000 messages through its API (each send rescans the
queue: hours), so the benchmark fills it here, with moto's own `Message` and
`Queue.add_message` (O(1) for a standard queue in both models), then serves as the
emulator's launcher does. Prints its URL on stdout once the queue is full, just before
moto starts listening (bench/harness.py's ServerProcess convention; the caller then waits
for the port to answer).
"""

from __future__ import annotations

import argparse
import sys

from moto_launch import die_with_the_benchmark, parse_arguments, serve


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queue", required=True)
    parser.add_argument("--messages", type=int, default=0)
    parser.add_argument("--body-bytes", type=int, default=100)
    args, moto_argv = parse_arguments(parser)
    die_with_the_benchmark()
    if args.fast:
        from emulator.moto_child.fast_sqs import apply

        if not apply():
            sys.exit("moto_sqs_fast.apply() refused this moto version")
    from moto.moto_api._internal import mock_random
    from moto.sqs.models import Message, sqs_backends

    queue = sqs_backends[args.account][args.region].create_queue(args.queue)
    body = "x" * args.body_bytes
    for _ in range(args.messages):
        message = Message(str(mock_random.uuid4()), body)
        message.mark_sent()
        queue.add_message(message)
    serve(args.port, moto_argv)


if __name__ == "__main__":
    main()
