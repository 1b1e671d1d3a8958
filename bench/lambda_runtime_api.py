"""A loopback stand-in for AWS's Lambda Runtime API (Lambda itself cannot run here), used by
bench/lambda-cold-start.sh to time `supactl serve rest-lambda` from process start to its first response.

Each run: start a fresh Runtime API on a free port, start the function process, hand it one Function URL
event (API Gateway v2 payload) on its first /next, and stop the clock when it posts the response. A second
event then gives the warm latency of the same process for comparison. Prints figures; asserts nothing
beyond the response being a 200.
"""

import argparse
import hashlib
import hmac
import json
import os
import queue
import statistics
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def function_url_event(path, query, jwt):
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {
            "host": "bench.lambda-url.us-east-1.on.aws",
            "x-supactl-authorization": f"Bearer {jwt}",
        },
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "bench",
            "domainName": "bench.lambda-url.us-east-1.on.aws",
            "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1"},
            "requestId": "bench",
            "routeKey": "$default",
            "stage": "$default",
            "timeEpoch": 0,
        },
        "isBase64Encoded": False,
    }


class RuntimeApi:
    def __init__(self):
        self.events = queue.Queue()
        self.results = queue.Queue()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path != "/2018-06-01/runtime/invocation/next":
                    self.send_error(404)
                    return
                request_id, event = api.events.get()
                body = json.dumps(event).encode()
                self.send_response(200)
                self.send_header("Lambda-Runtime-Aws-Request-Id", request_id)
                self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30000))
                self.send_header("Lambda-Runtime-Invoked-Function-Arn",
                                 "arn:aws:lambda:us-east-1:000000000000:function:rest-bench")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                now = time.perf_counter()
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()
                api.results.put((now, self.path, body))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def address(self):
        host, port = self.server.server_address
        return f"{host}:{port}"

    def invoke(self, request_id, event, start=None):
        start = time.perf_counter() if start is None else start
        self.events.put((request_id, event))
        end, path, body = self.results.get(timeout=30)
        if not path.endswith("/response"):
            raise SystemExit(f"the function reported an error at {path}: {body!r}")
        status = json.loads(body).get("statusCode")
        if status != 200:
            raise SystemExit(f"the function answered {status}: {body!r}")
        return (end - start) * 1000

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", required=True)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--project", required=True)
    p.add_argument("--tenant-manager-url", required=True)
    p.add_argument("--jwt", required=True)
    p.add_argument("--path", default="/bench")
    p.add_argument("--query", default="select=*&id=eq.1")
    a = p.parse_args()
    # The function gets its project's token, as the tenant-manager sets it (runtime/common/src/tokens.rs).
    project_token = hmac.new(
        os.environ["SUPACTL_SERVICE_TOKEN"].encode(), f"rest-lambda:{a.project}".encode(), hashlib.sha256
    ).hexdigest()

    cold, warm = [], []
    for i in range(a.runs):
        api = RuntimeApi()
        env = {
            "PATH": os.environ.get("PATH", ""),
            "SUPACTL_LOG": "warn",
            "AWS_LAMBDA_RUNTIME_API": api.address,
            "AWS_LAMBDA_FUNCTION_NAME": "rest-bench",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "SUPACTL_PROJECT_REF": a.project,
            "SUPACTL_TENANT_MANAGER_URL": a.tenant_manager_url,
            "SUPACTL_PROJECT_TOKEN": project_token,
        }
        event = function_url_event(a.path, a.query, a.jwt)
        # The first event is queued before the process starts: the clock covers exec, cold-start
        # configuration (project config from the tenant-manager, first database connection, schema cache)
        # and the first request.
        start = time.perf_counter()
        proc = subprocess.Popen([a.bin, "serve", "rest-lambda"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            cold.append(api.invoke(f"cold-{i}", event, start))
            warm.append(api.invoke(f"warm-{i}", event))
        finally:
            proc.kill()
            proc.wait()
            api.close()

    def summary(xs):
        xs = sorted(xs)
        return (f"median {statistics.median(xs):.1f} ms, min {xs[0]:.1f} ms, max {xs[-1]:.1f} ms "
                f"({len(xs)} runs)")

    print(f"cold start (process start -> first response): {summary(cold)}; target <= 150 ms")
    print(f"second request, same process:                 {summary(warm)}")


if __name__ == "__main__":
    main()
