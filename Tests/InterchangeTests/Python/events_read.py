"""Reads TensorBoard event files with TensorBoard's own reader.

Usage: events_read.py LOGDIR. Prints, as JSON, every run TensorBoard finds under
LOGDIR (as `tensorboard --logdir LOGDIR` would name it) with its scalars:
{run: {tag: [[step, value, wall_time], ...]}}.
"""
import json
import sys

from tensorboard.backend.event_processing import event_multiplexer


def main(logdir):
    m = event_multiplexer.EventMultiplexer()
    m.AddRunsFromDirectory(logdir)
    m.Reload()
    out = {}
    for run, tags in sorted(m.Runs().items()):
        scalars = {}
        for tag in tags.get("scalars", []):
            scalars[tag] = [[e.step, e.value, e.wall_time] for e in m.Scalars(run, tag)]
        out[run] = scalars
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv[1])
