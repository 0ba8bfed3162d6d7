"""Each Lambda package's size and its bootstrap's init time, under a local Lambda Runtime API.

    terraform/package.sh && python3 benches/lambda_init.py [--runs 20]

For each zip in target/lambda-zips, the bootstrap is unpacked and started the way Lambda starts
it (AWS_LAMBDA_RUNTIME_API and the function's settings in its environment); its init is the time
from the process start to its first `GET /2018-06-01/runtime/invocation/next`, when it has built
its clients and waits for work. A fake Runtime API on loopback records that moment; the process
is then stopped. The settings point at unused loopback addresses: no init step calls AWS.
Prints one line per function (zip MB, bootstrap MB, init median and p90 ms over the runs).
"""

import argparse
import http.server
import os
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import zipfile

FUNCTIONS = ["api", "authorizer", "writer", "exporter", "compactor", "reporter"]
SETTINGS = {
    "CAUCE_QUEUE_URL": "http://127.0.0.1:9/123456789012/cauce-ingest.fifo",
    "CAUCE_DLQ_URL": "http://127.0.0.1:9/123456789012/cauce-ingest-dlq.fifo",
    "CAUCE_TABLE_PREFIX": "cauce",
    "CAUCE_CLIENTS_TABLE": "cauce-clients",
    "CAUCE_LAKE": "s3://cauce-lake/lake",
    "CAUCE_RAW_STREAM": "cauce-raw",
    "CAUCE_GLUE_DATABASE": "cauce_lake",
    "AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH": "true",
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
    "AWS_LAMBDA_LOG_FORMAT": "JSON",
}


class RuntimeApi(http.server.BaseHTTPRequestHandler):
    """Records when the bootstrap first asks for work, and never gives it any."""

    arrived = None

    def do_GET(self):
        if self.path.endswith("/runtime/invocation/next") and RuntimeApi.arrived is None:
            RuntimeApi.arrived = time.perf_counter()
            RuntimeApi.event.set()
        self.send_response(503)
        self.end_headers()

    def do_POST(self):
        self.send_response(202)
        self.end_headers()

    def log_message(self, *args):
        pass


def init_ms(bootstrap, port, name):
    RuntimeApi.arrived = None
    RuntimeApi.event = threading.Event()
    env = dict(SETTINGS, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{port}", AWS_LAMBDA_FUNCTION_NAME=name,
               PATH=os.environ.get("PATH", ""))
    start = time.perf_counter()
    proc = subprocess.Popen([bootstrap], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ok = RuntimeApi.event.wait(30)
    proc.kill()
    _, err = proc.communicate()
    if not ok:
        raise SystemExit(f"{name}: never asked for work:\n{err.decode(errors='replace')[-2000:]}")
    return (RuntimeApi.arrived - start) * 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--zips", default="target/lambda-zips")
    args = parser.parse_args()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), RuntimeApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"{'function':<11} {'zip MB':>7} {'bootstrap MB':>13} {'init ms (median)':>17} {'p90':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in FUNCTIONS:
            path = os.path.join(args.zips, f"{name}.zip")
            with zipfile.ZipFile(path) as z:
                z.extract("bootstrap", os.path.join(tmp, name))
            bootstrap = os.path.join(tmp, name, "bootstrap")
            os.chmod(bootstrap, 0o755)
            times = sorted(init_ms(bootstrap, port, name) for _ in range(args.runs))
            p90 = times[min(len(times) - 1, int(len(times) * 0.9))]
            print(f"{name:<11} {os.path.getsize(path) / 1e6:>7.2f} {os.path.getsize(bootstrap) / 1e6:>13.2f} "
                  f"{statistics.median(times):>17.1f} {p90:>6.1f}")
    server.shutdown()


if __name__ == "__main__":
    main()
