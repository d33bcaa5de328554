"""Checks a run's TensorBoard event files (run.report_to: [tensorboard]) against its metrics.jsonl.

Reads <run>/tb/ with the tensorboard package's own readers, SessionLog START purges included:
EventAccumulator (what tbparse reads with) for the scalars, and plugin_event_accumulator's (what
`tensorboard --logdir --load_fast=false` serves, every summary as a tensor) for the scalars again
and the texts (the legacy EventAccumulator does not purge tensors). tbparse reads each file of a
folder on its own, so it purges nothing across files: it shows a resumed run's re-logged steps
twice, the later ones last. It checks that:
- every metrics.jsonl value is a scalar of the same name at the same step, as float32
  (null in JSON is NaN), in the same order, and there are no other scalars, in both readers;
- no tag has a step twice (a resumed run's file purges what the first logged after its
  checkpoint), unless metrics.jsonl has it twice as well (then it is reported, not failed);
- each training step has its sample completions as a text-plugin summary.
It prints what it found, then every mismatch, and exits 1 if there is one.

Usage: python tools/tensorboard_check.py RUN_DIR [RUN_DIR ...]
(pip install tensorboard)
"""
import collections
import glob
import json
import math
import os
import struct
import sys

from tensorboard.backend.event_processing import plugin_event_accumulator
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.util import tensor_util
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

SAMPLES_TAG = "samples"


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def same(a, b):
    return (math.isnan(a) and math.isnan(b)) or a == b


def expected_scalars(run):
    by_tag = collections.defaultdict(list)
    steps = set()
    with open(os.path.join(run, "metrics.jsonl")) as f:
        for line in f:
            if not line.strip():
                continue
            record = json.loads(line)
            step = record.pop("step")
            if "eval/accuracy" not in record:
                steps.add(step)
            for tag, value in record.items():
                by_tag[tag].append((step, f32(float("nan") if value is None else value)))
    return by_tag, steps


def check(run):
    logdir = os.path.join(run, "tb")
    files = sorted(glob.glob(os.path.join(logdir, "*tfevents*")))
    if not files:
        return [f"{run}: no event files in {logdir}"]
    print(f"{run}: {len(files)} event file(s)")
    for path in files:
        events = list(EventFileLoader(path).Load())
        starts = [e.step for e in events if e.HasField("session_log") and e.session_log.status == 1]
        purge = f", SessionLog START at step {starts[0]} (purge step)" if starts else ""
        print(f"  {os.path.basename(path)}: {len(events)} events, first {events[0].file_version!r}"
              f"{purge}")

    acc = EventAccumulator(logdir, size_guidance={"scalars": 0})
    acc.Reload()
    served = plugin_event_accumulator.EventAccumulator(logdir, size_guidance={"tensors": 0})
    served.Reload()
    by_plugin = served.PluginTagToContent
    expected, train_steps = expected_scalars(run)
    errors = []
    got_tags = set(acc.Tags()["scalars"])
    served_tags = set(by_plugin("scalars"))
    if served_tags != got_tags:
        errors.append(f"the two readers' scalar tags differ: {sorted(served_tags ^ got_tags)}")
    if got_tags != set(expected):
        errors.append(f"scalar tags differ: only in TensorBoard {sorted(got_tags - set(expected))},"
                      f" only in metrics.jsonl {sorted(set(expected) - got_tags)}")
    points = 0
    repeated = []
    for tag in sorted(got_tags & set(expected)):
        got = [(e.step, e.value) for e in acc.Scalars(tag)]
        shown = [(e.step, float(tensor_util.make_ndarray(e.tensor_proto)))
                 for e in served.Tensors(tag)]
        want = expected[tag]
        points += len(got)
        for reader, pts in (("EventAccumulator", got), ("plugin_event_accumulator", shown)):
            if len(pts) != len(want) or not all(
                    gs == ws and same(gv, wv) for (gs, gv), (ws, wv) in zip(pts, want)):
                errors.append(f"{tag}: {reader} has {pts[:6]}..., metrics.jsonl {want[:6]}...")
        counts = collections.Counter(s for s, _ in got)
        twice = sorted(s for s, n in counts.items() if n > 1)
        if twice:
            want_counts = collections.Counter(s for s, _ in want)
            want_twice = sorted(s for s, n in want_counts.items() if n > 1)
            if twice == want_twice:
                repeated.append(f"{tag} at steps {twice}")
            else:
                errors.append(f"{tag}: steps {twice} logged twice")
    print(f"  scalars: {len(got_tags)} tags, {points} points, equal to metrics.jsonl's "
          f"{sum(len(v) for v in expected.values())} values in both readers"
          if not errors else "  scalars: differ")
    if repeated:
        print(f"  note: metrics.jsonl itself repeats {'; '.join(repeated)}")
    else:
        print("  no tag has a step twice")

    if SAMPLES_TAG not in by_plugin("text"):
        errors.append(f"no {SAMPLES_TAG!r} text summaries")
    else:
        texts = served.Tensors(SAMPLES_TAG)
        text_steps = [e.step for e in texts]
        first = texts[0].tensor_proto.string_val[0].decode("utf-8")
        print(f"  text: {SAMPLES_TAG!r} (plugin 'text') at steps {text_steps}; "
              f"step {text_steps[0]} begins {first.splitlines()[0]!r}")
        if text_steps != sorted(train_steps):
            errors.append(f"text summaries at steps {text_steps}, "
                          f"training steps {sorted(train_steps)}")
    return [f"{run}: {e}" for e in errors]


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    errors = [e for run in sys.argv[1:] for e in check(run)]
    for e in errors:
        print(f"MISMATCH {e}")
    print("OK" if not errors else f"{len(errors)} mismatch(es)")
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
