"""Golden TensorBoard event file for training/tensorboard.ts, written by the tensorboard package.

The events go through tensorboard's own EventFileWriter (the one torch.utils.tensorboard's
SummaryWriter wraps, so what TRL's TensorBoard callback writes): its first event (file_version
"brain.Event:2", wall_time = time.time(), source_metadata) and then, with fixed wall times, a
SessionLog START (a purge step), simple_value scalars (TRL's add_scalar) at steps that take one to
six varint bytes, values float32 rounds or cannot hold, and text-plugin summaries made by
tensorboard.plugins.text.summary_v2.text_pb (a scalar string tensor). events.json lists the same
events for tests/training/tensorboard_test.ts, which encodes them with our writer and compares
bytes.

Usage: python tools/tensorboard_golden.py tests/fixtures/tensorboard && deno fmt tests/fixtures
(pip install tensorboard)
"""
import json
import math
import os
import sys

import tensorboard
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.text import summary_v2 as text_summary
from tensorboard.summary.writer.event_file_writer import EventFileWriter

NAME = "events.out.tfevents.golden"
SCALARS = [
    (0, {"loss/policy": 0.0, "reward/mean": -1.5, "kl": 1e-7}),
    (1, {"grad_norm": 0.1, "tokens/sampled_total": 123456789, "accuracy": 1.0}),
    (300, {"learning_rate": 3e-6, "time/step": 2.5e-45, "big": 3.4028235677973366e38}),
    (2**40, {"reward/std": float("nan"), "x": float("inf"), "y": -float("inf"), "z": -0.0}),
]
TEXTS = [
    (2, "samples", "### Sample 1: reward 1.000, correct (ok)\n\nPrompt:\n\n    2+3=?\n"),
    (3, "notes", "unicode: é → ✓ 😀, empty line:\n\nend"),
]


def number(x):
    return x if math.isfinite(x) else str(x).replace("inf", "Infinity").replace("nan", "NaN")


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name in os.listdir(out):
        if "tfevents" in name:
            os.remove(os.path.join(out, name))
    writer = EventFileWriter(out)
    events = []
    wall = 1700000000.25

    def add(event, described):
        writer.add_event(event)
        events.append(described)

    add(
        event_pb2.Event(wall_time=wall, step=3,
                        session_log=event_pb2.SessionLog(status=event_pb2.SessionLog.START)),
        {"wallTime": wall, "step": 3, "sessionStatus": "start"},
    )
    for step, values in SCALARS:
        wall += 0.125
        summary = summary_pb2.Summary(
            value=[summary_pb2.Summary.Value(tag=t, simple_value=v) for t, v in values.items()])
        add(
            event_pb2.Event(wall_time=wall, step=step, summary=summary),
            {"wallTime": wall, "step": step,
             "summary": [{"tag": t, "simpleValue": number(v)} for t, v in values.items()]},
        )
    for step, tag, text in TEXTS:
        wall += 0.125
        summary = text_summary.text_pb(tag, text)
        add(
            event_pb2.Event(wall_time=wall, step=step, summary=summary),
            {"wallTime": wall, "step": step, "summary": [{"tag": tag, "text": text}]},
        )
    writer.close()

    # The writer names its file after the time, host and process: a fixed name for the fixture.
    written = writer._file_name
    first = event_pb2.Event()
    # The first record: 8-byte length, 4-byte CRC, the data, 4-byte CRC.
    with open(written, "rb") as f:
        data = f.read()
    length = int.from_bytes(data[:8], "little")
    first.ParseFromString(data[12:12 + length])
    events.insert(0, {
        "wallTime": first.wall_time,
        "fileVersion": first.file_version,
        "sourceWriter": first.source_metadata.writer,
    })
    os.replace(written, os.path.join(out, NAME))

    acc = EventAccumulator(out)
    acc.Reload()
    assert acc.Tags()["scalars"], "tensorboard reads its own file back"
    with open(os.path.join(out, "events.json"), "w") as f:
        json.dump({"tensorboard": tensorboard.__version__, "file": NAME, "events": events}, f,
                  indent=1, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
