"""CPU time of each stage of a running `cauce serve`, from one perf profile.

Usage: python benches/stage_cpu.py PID SECONDS [EVENTS_PER_SECOND]

Samples the process's threads with `perf record` (software clock, DWARF call stacks) for
SECONDS, then puts each sample in the stage whose code is on its stack, outermost first:

* api: the HTTP server and the API's handlers, with the queue's send and the raw archive;
* writer: the writer's loop, the queue's receive and ack, and the store's writes;
* exporter: the change-log reads, the lake writer (Arrow, Parquet, zstd) and its cursor;
* other: the runtime's own work (scheduling, timers, idle polls) and what matched nothing.

It prints each stage's CPU seconds a second (cores) and, given the events a second that went
through every stage meanwhile (a steady rate that holds), CPU microseconds per event.
`cargo bench --bench sustained` runs it when CAUCE_SUSTAINED_PROFILE is set.
"""

import collections
import os
import subprocess
import sys
import tempfile

# Patterns on demangled frames, per stage; the outermost frame that matches decides.
STAGES = [
    ("exporter", ["cauce_exporter::", "SqliteStore::change_batch", "SqliteStore::set_cursor",
                  "SqliteStore::prune_changes", "SqliteStore::lag", "SqliteStore::cursor"]),
    ("writer", ["cauce_ingest::writer::", "RecordStore>::put", "SqliteQueue::receive",
                "SqliteQueue::ack", "SqliteQueue>::receive", "Queue>::ack", "Queue>::receive",
                "Queue>::release", "archive_rejected"]),
    ("api", ["cauce_ingest::api::", "cauce::cli::http::", "hyper::", "Queue>::send",
             "SqliteQueue::send", "cauce_ingest::archive::", "axum::"]),
]


def stage_of(frames):
    """The stage of one sample, its frames listed leaf first."""
    for frame in reversed(frames):
        for stage, patterns in STAGES:
            if any(p in frame for p in patterns):
                return stage
    return "other"


def main():
    pid, secs = int(sys.argv[1]), float(sys.argv[2])
    rate = float(sys.argv[3]) if len(sys.argv) > 3 else None
    freq = 499
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "perf.data")
        subprocess.run(
            ["perf", "record", "-q", "-e", "cpu-clock", "-F", str(freq), "--call-graph",
             "dwarf,16384", "-p", str(pid), "-o", data, "--", "sleep", str(secs)],
            check=True, stderr=subprocess.DEVNULL)
        script = subprocess.run(["perf", "script", "-i", data, "--no-inline"],
                                capture_output=True, text=True, check=True).stdout
    counts = collections.Counter()
    for sample in script.split("\n\n"):
        lines = [l.strip() for l in sample.strip().splitlines()]
        if not lines:
            continue
        frames = [l.split(" ", 1)[1] if " " in l else l for l in lines[1:]]
        counts[stage_of(frames)] += 1
    total = sum(counts.values())
    print(f"stage CPU over {secs:.0f} s ({total} samples at {freq} Hz):")
    for stage in ["api", "writer", "exporter", "other"]:
        cores = counts[stage] / freq / secs
        line = f"  {stage:<9} {cores:5.2f} cores"
        if rate:
            line += f", {cores / rate * 1e6:6.2f} us/event"
        print(line)
    if rate:
        all_cores = total / freq / secs
        print(f"  all       {all_cores:5.2f} cores, {all_cores / rate * 1e6:6.2f} us/event at {rate:.0f} events/s")


if __name__ == "__main__":
    main()
