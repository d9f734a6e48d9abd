# SPDX-License-Identifier: MIT
"""per_minute.py - records/s per minute over the last hour of a topic, with
only the standard library (no pandas):

    PYTHONPATH=python python3 python/examples/per_minute.py orders [MINUTES]
"""
import collections
import datetime
import sys

import spillway


def main():
    topic = sys.argv[1]
    minutes = int(sys.argv[2]) if len(sys.argv) > 2 else 60
    start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=minutes)
    per_minute = collections.Counter()
    nbytes = collections.Counter()
    with spillway.Reader(topic, start=start) as r:
        for batch in r.batches(max=4096):
            for rec in batch:
                m = rec.timestamp // 60_000_000_000
                per_minute[m] += 1
                nbytes[m] += len(rec.data)
    for m in sorted(per_minute):
        when = datetime.datetime.fromtimestamp(m * 60, tz=datetime.timezone.utc)
        print("%s  %10.1f records/s  %12.1f B/s" % (when.strftime("%Y-%m-%d %H:%M"),
                                                   per_minute[m] / 60, nbytes[m] / 60))


if __name__ == "__main__":
    main()
