"""CPU time of each stage of a running `cauce serve`, from one perf profile.

Usage: python benches/stage_cpu.py PID SECONDS [EVENTS_PER_SECOND]

Samples the process's threads with `perf record` (software clock, DWARF call stacks) for
SECONDS, then puts each sample in the stage whose code is on its stack, outermost first:

* api: the HTTP server and the API's handlers, with the raw archive's thread;
* writer: the writer's loop and the store's writes, commits and checkpoints;
* exporter: the change-log reads, the lake writer (Arrow, Parquet, zstd) and its cursor;
* queue: the embedded queue's thread and its checkpoints, shared by the API's sends and the
  writer's receives and acks;
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

# Threads that belong to one stage whatever they run.
THREADS = {
    "raw-archive": "api",
    "cauce-queue": "queue",
    "ckpt-queue": "queue",
    "ckpt-store": "writer",
}

# Patterns on demangled frames, per stage, tried in this order on a sample's whole stack. The
# store's commits run under `execute_batch` in tokio's blocking threads: the writer's.
STAGES = [
    ("writer", ["cauce_ingest::writer::", "put_one", "RecordStore", "archive_rejected",
                "Connection::execute_batch"]),
    # The exporter's reads of the change log and its cursor and pruning statements (their
    # closures are inlined: only rusqlite's frames are left on those stacks).
    ("exporter", ["cauce_exporter::", "change_batch", "decode_change", "prune_changes",
                  "set_cursor", "SqliteStore::lag", "SqliteStore::cursor",
                  "Statement::execute_with_bound_parameters", "fallible_streaming_iterator"]),
    ("api", ["cauce::cli::http::", "cauce_ingest::api::", "hyper::", "axum::",
             "cauce_ingest::archive::"]),
]


def stage_of(thread, frames):
    """The stage of one sample: by its thread, else by the code on its stack."""
    if thread in THREADS:
        return THREADS[thread]
    stack = " | ".join(frames)
    for stage, patterns in STAGES:
        if any(p in stack for p in patterns):
            return stage
    return "other"


def has_symbols(pid):
    """Whether the process's binary has a symbol table, without which no stack names a stage."""
    out = subprocess.run(["readelf", "-S", "-W", f"/proc/{pid}/exe"], capture_output=True,
                         text=True).stdout
    return ".symtab" in out


def main():
    pid, secs = int(sys.argv[1]), float(sys.argv[2])
    rate = float(sys.argv[3]) if len(sys.argv) > 3 else None
    if not has_symbols(pid):
        sys.exit("stage_cpu: the server's binary has no symbols (the release profile strips "
                 "them): build `cargo build --profile profiling` and run the benchmark with "
                 "CAUCE_BIN=target/profiling/cauce")
    freq = 499
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "perf.data")
        subprocess.run(
            ["perf", "record", "-q", "-e", "cpu-clock", "-F", str(freq), "--call-graph",
             "dwarf,16384", "-p", str(pid), "-o", data, "--", "sleep", str(secs)],
            check=True, stderr=subprocess.DEVNULL)
        script = subprocess.run(["perf", "script", "-i", data, "--no-inline"],
                                capture_output=True, text=True, check=True).stdout
    if os.environ.get("STAGE_CPU_KEEP"):
        with open(os.environ["STAGE_CPU_KEEP"], "w") as keep:
            keep.write(script)
    counts = collections.Counter()
    for sample in script.split("\n\n"):
        lines = [l.strip() for l in sample.strip().splitlines()]
        if not lines:
            continue
        frames = [l.split(" ", 1)[1] if " " in l else l for l in lines[1:]]
        counts[stage_of(lines[0].split()[0], frames)] += 1
    total = sum(counts.values())
    print(f"stage CPU over {secs:.0f} s ({total} samples at {freq} Hz):")
    for stage in ["api", "queue", "writer", "exporter", "other"]:
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
