#!/usr/bin/env python3
"""Time from process start to ready-for-first-event for a Lambda binary.

A stand-in for the Lambda Runtime API listens on loopback; the binary is started with
AWS_LAMBDA_RUNTIME_API pointing at it, and "ready" is the moment it asks for its first event
(GET /2018-06-01/runtime/invocation/next), i.e. after all of its init: config, clients,
connections. The binary is then killed. Prints the median and the spread over N starts.

    coldstart.py BINARY RUNS   (the binary's configuration comes from the environment)
"""
import http.server
import os
import statistics
import subprocess
import sys
import threading
import time

ready = threading.Event()


class RuntimeApi(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.endswith("/runtime/invocation/next"):
            ready.set()
            # Hold the request: the benchmark ends here and the process is killed.
            time.sleep(5)
        self.send_response(404)
        self.end_headers()

    def do_POST(self):
        # An init error report: the binary failed to start, which the run reports.
        length = int(self.headers.get("content-length") or 0)
        sys.stderr.write("init error: %s\n" % self.rfile.read(length).decode(errors="replace"))
        self.send_response(202)
        self.end_headers()

    def log_message(self, *args):
        pass


def main():
    binary, runs = sys.argv[1], int(sys.argv[2])
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RuntimeApi)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = dict(os.environ, AWS_LAMBDA_RUNTIME_API="127.0.0.1:%d" % server.server_address[1],
               AWS_LAMBDA_FUNCTION_NAME="coldstart", AWS_LAMBDA_FUNCTION_MEMORY_SIZE="1024",
               AWS_LAMBDA_FUNCTION_VERSION="$LATEST", AWS_LAMBDA_LOG_STREAM_NAME="bench",
               AWS_LAMBDA_LOG_GROUP_NAME="bench")
    times = []
    for _ in range(runs):
        ready.clear()
        started = time.perf_counter()
        proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if not ready.wait(timeout=10):
            proc.kill()
            _, err = proc.communicate()
            sys.exit("%s never asked for an event (exit %s): %s" % (binary, proc.returncode, err.decode(errors="replace")[-2000:]))
        times.append((time.perf_counter() - started) * 1000)
        proc.kill()
        proc.wait()
    times.sort()
    print("%.1f %.1f %.1f" % (statistics.median(times), times[0], times[-1]))


if __name__ == "__main__":
    main()
