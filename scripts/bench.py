"""The driver of `scripts/bench`: AWS requests, wall time, cold start and peak memory of every function.

For each fleet (databases x daily snapshots each) it resets the emulator (scripts/emulator.py, moto server), seeds the
fleet as a Lifeboat deployment would have left it (tagged DB instances, their daily snapshots with Lifeboat's tags,
and their copies in the DR region), then runs every function once, as Lambda does: the release binary
(`cargo lambda build --release`) is started against a local Lambda Runtime API served here, with the deployment's
environment, and given one scheduled event. Its AWS requests go through a counting proxy in front of the emulator,
which counts them by service and operation and times the emulator's answers.

Per function and fleet it records: the requests by operation, the wall time of the invocation, the process's start
(process start to its first request for an invocation: runtime, policy, SDK clients), the time spent waiting on the
emulator, and the peak resident memory (the process's maximum RSS, from wait4). The figures are printed as tables
and written as JSON (the path given by --out) for comparison between commits (--compare OLD.json).

The bench policy is infra/policy.yaml with the daily tier and the DR copies kept two days fewer than the fleet has
daily snapshots, so the fleet is in the steady state of its plan: a retention run deletes the few snapshots that
expired (those that are not also a weekly or monthly recovery point) in both regions.
`--bulk` adds the long-fleet case: the largest fleet's retention shortened to a week, with the max_delete_fraction
floor lifted, so that one run must delete most of the history in both regions, under a short Lambda timeout
(--bulk-timeout) so that it must split itself: the continuations it queues (asynchronous invocations of itself, which
the proxy answers as Lambda does) are run next, until the run is complete.
"""

import argparse
import http.client
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import boto3
import yaml

ROOT = Path(__file__).resolve().parent.parent
PRIMARY = "us-east-1"
DR = "us-west-2"
ACCOUNT = "123456789012"
DEPLOYMENT = "lifeboat"
LEDGER_BUCKET = "lifeboat-bench-ledger"
REPORTS_BUCKET = "lifeboat-bench-reports"
TOPIC = "lifeboat-bench-alerts"
TOPIC_ARN = f"arn:aws:sns:{PRIMARY}:{ACCOUNT}:{TOPIC}"
# The functions, in the order a day runs them, with the scheduled event each gets (events/, time replaced).
FUNCTIONS = [
    ("snapshot", "events/snapshot/scheduled-daily.json"),
    ("copy", "events/copy/scheduled-hourly.json"),
    ("retention", "events/retention/scheduled-daily.json"),
    ("verify", "events/verify/scheduled.json"),
    ("monitor", "events/monitor/scheduled.json"),
    ("restore", "events/restore/scheduled.json"),
    ("failover", "events/failover/scheduled.json"),
]
# What the Lambda service lets one invocation run, and gives a function by default (infra/template.yaml).
LAMBDA_TIMEOUT_SECONDS = 900
# Lambda's limit on a synchronous invocation's answer.
ANSWER_LIMIT_BYTES = 6 * 2**20
# The bulk deletion: the largest fleet's retention shortened to this many days, with this timeout, so that the run
# must split itself (a continuation) to finish.
BULK_DAILY_DAYS = 7
SEED_BATCH = 5000


def free_port():
    """A free TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------------------------------------------------------
# The counting proxy


HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


def operation_of(method, path, headers, body):
    """(service, operation) of a signed AWS request, whatever its protocol."""
    scope = re.search(r"Credential=[^/]+/[0-9]+/[a-z0-9-]+/([a-z0-9-]+)/", headers.get("Authorization", ""))
    service = scope.group(1) if scope else "unsigned"
    target = headers.get("X-Amz-Target")
    if target:
        return service, target.rsplit(".", 1)[-1]
    rpc = re.search(r"/operation/([A-Za-z]+)$", path.split("?", 1)[0])
    if rpc:
        return service, rpc.group(1)
    if body and "x-www-form-urlencoded" in headers.get("Content-Type", ""):
        action = parse_qs(body.decode(errors="replace")).get("Action")
        if action:
            return service, action[0]
    parts = urlsplit(path)
    if service == "s3":
        query = parse_qs(parts.query, keep_blank_values=True)
        has_key = parts.path.strip("/").count("/") >= 1
        if method == "GET" and not has_key:
            return service, "ListObjectsV2" if "list-type" in query else "ListObjects"
        verbs = {"GET": "GetObject", "PUT": "PutObject", "HEAD": "HeadObject", "DELETE": "DeleteObject"}
        return service, verbs.get(method, method) if has_key else f"{method} bucket"
    template = re.sub(r"/[A-Z0-9]{8,}(?=/|$)", "/{id}", parts.path)
    return service, f"{method} {template}"


class QuietHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive, without Nagle's delay, and without a log line per request."""

    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *_):
        pass


def upstream(port):
    """A connection to the emulator, without Nagle's delay."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    connection.connect()
    connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return connection


class CountingProxy:
    """An HTTP proxy in front of the emulator: counts requests by (service, operation) and times the answers."""

    def __init__(self, upstream_port):
        self.lock = threading.Lock()
        self.counts = Counter()
        self.intervals = []
        self.invocations = []
        proxy = self
        local = threading.local()

        class Handler(QuietHandler):

            def body(self):
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def relay(self):
                started = time.perf_counter()
                body = self.body()
                key = operation_of(self.command, self.path, self.headers, body)
                if key[0] == "lambda" and self.path.split("?")[0].endswith("/invocations"):
                    # A function invoking itself asynchronously (a continuation): Lambda queues it and answers
                    # 202; the bench runs it next, as Lambda would.
                    with proxy.lock:
                        proxy.counts[(key[0], "Invoke")] += 1
                        proxy.invocations.append(json.loads(body or b"null"))
                    self.send_response_only(202)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if not hasattr(local, "connection"):
                    local.connection = upstream(upstream_port)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                headers["Content-Length"] = str(len(body))
                try:
                    local.connection.request(self.command, self.path, body=body, headers=headers)
                    response = local.connection.getresponse()
                except (OSError, http.client.HTTPException):
                    local.connection.close()
                    local.connection = upstream(upstream_port)
                    local.connection.request(self.command, self.path, body=body, headers=headers)
                    response = local.connection.getresponse()
                data = response.read()
                self.send_response_only(response.status, response.reason)
                for name, value in response.getheaders():
                    if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                # Headers and body in one write: two small writes would meet the client's delayed ACK.
                self._headers_buffer.append(b"\r\n")
                if self.command != "HEAD":
                    self._headers_buffer.append(data)
                self.flush_headers()
                with proxy.lock:
                    proxy.counts[key] += 1
                    proxy.intervals.append((started, time.perf_counter()))

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = relay

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def queued(self):
        """The asynchronous invocations the functions asked for since the last call."""
        with self.lock:
            invocations, self.invocations = self.invocations, []
        return invocations

    def take(self):
        """The requests counted since the last call and the time during which at least one was waiting on the
        emulator (concurrent requests count once), and start counting afresh."""
        with self.lock:
            counts, intervals = self.counts, sorted(self.intervals)
            self.counts, self.intervals = Counter(), []
        busy, end = 0.0, None
        for start, stop in intervals:
            if end is None or start > end:
                busy += stop - start
                end = stop
            elif stop > end:
                busy += stop - end
                end = stop
        return counts, busy


# ---------------------------------------------------------------------------------------------------------------
# A local Lambda Runtime API


class RuntimeApi:
    """The Lambda Runtime API of one function process: hands out invocations and collects their answers."""

    def __init__(self, timeout_seconds):
        self.pending = queue.Queue()
        self.answers = {}
        self.answered = threading.Condition()
        self.first_poll = None
        api = self

        class Handler(QuietHandler):

            def do_GET(self):
                if not self.path.endswith("/runtime/invocation/next"):
                    self.send_error(404)
                    return
                if api.first_poll is None:
                    api.first_poll = time.perf_counter()
                request_id, event = api.pending.get()
                body = json.dumps(event).encode()
                deadline_ms = int((time.time() + timeout_seconds) * 1000)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Lambda-Runtime-Aws-Request-Id", request_id)
                self.send_header("Lambda-Runtime-Deadline-Ms", str(deadline_ms))
                self.send_header(
                    "Lambda-Runtime-Invoked-Function-Arn", f"arn:aws:lambda:{PRIMARY}:{ACCOUNT}:function:bench"
                )
                self.send_header("Lambda-Runtime-Trace-Id", f"Root=1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                match = re.search(r"/runtime/invocation/([^/]+)/(response|error)$", self.path)
                key = (match.group(1), match.group(2)) if match else ("init", "error")
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()
                with api.answered:
                    api.answers[key[0]] = (key[1], body, time.perf_counter())
                    api.answered.notify_all()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def invoke(self, event, timeout):
        """Queue one invocation; (kind, body, answered-at) once the function answers, or the init error."""
        request_id = str(uuid.uuid4())
        self.pending.put((request_id, event))
        with self.answered:
            ok = self.answered.wait_for(
                lambda: request_id in self.answers or "init" in self.answers, timeout=timeout
            )
        if not ok:
            raise TimeoutError(f"no answer within {timeout} s")
        return self.answers.get(request_id) or self.answers["init"]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def run_function(binary, environment, event, log, timeout_seconds=LAMBDA_TIMEOUT_SECONDS):
    """Start `binary` as Lambda would, with `timeout_seconds` to run, and give it `event`: its answer, timings and
    peak memory."""
    api = RuntimeApi(timeout_seconds)
    env = dict(environment, AWS_LAMBDA_RUNTIME_API=api.address)
    started = time.perf_counter()
    process = subprocess.Popen([str(binary)], env=env, stdout=log, stderr=log)
    try:
        kind, body, answered = api.invoke(event, timeout=LAMBDA_TIMEOUT_SECONDS * 2)
        peak_kib = peak_memory_kib(process.pid)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
        api.close()
    first_poll = api.first_poll or answered
    return {
        "ok": kind == "response",
        "answer": json.loads(body) if body else None,
        "answer_bytes": len(body),
        "start_ms": (first_poll - started) * 1000,
        "invoke_ms": (answered - first_poll) * 1000,
        "total_ms": (answered - started) * 1000,
        "peak_rss_mib": peak_kib / 1024,
    }


def peak_memory_kib(pid):
    """The peak resident memory of process `pid` since it started its program (VmHWM; wait4's maximum would also
    count the forked copy of this Python process before exec)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmHWM for process {pid}")


# ---------------------------------------------------------------------------------------------------------------
# The emulator and the fleet


def start_emulator(log_path):
    """moto server with Lifeboat's test additions, with no snapshot quota to speak of; (process, port)."""
    port = free_port()
    env = dict(os.environ, MOTO_RDS_SNAPSHOT_LIMIT="10000000")
    log = open(log_path, "w")
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts/emulator.py"), "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=log,
        stderr=log,
    )
    for _ in range(200):
        try:
            http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/moto-api/data.json")
            return process, port
        except OSError:
            if process.poll() is not None:
                break
            time.sleep(0.1)
    raise RuntimeError(f"the emulator did not start; see {log_path}")


def post(port, path, body=b""):
    """POST to the emulator; the status."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    connection.request("POST", path, body=body, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    text = response.read()
    if response.status >= 300:
        raise RuntimeError(f"{path}: {response.status} {text[:300]!r}")
    return response.status


def client(service, region, port):
    """A boto3 client of the emulator (not through the proxy: seeding is not counted)."""
    return boto3.client(
        service,
        region_name=region,
        endpoint_url=f"http://127.0.0.1:{port}",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def template_memory_mb():
    """The memory (MiB) infra/template.yaml gives each function: its own MemorySize, else the Globals one."""
    class Loader(yaml.SafeLoader):
        """YAML with CloudFormation's short-form tags (`!Ref`, `!Sub`, ...) read as plain values."""

    Loader.add_multi_constructor("!", lambda loader, tag, node: None)
    template = yaml.load((ROOT / "infra/template.yaml").read_text(), Loader=Loader)
    default = template["Globals"]["Function"]["MemorySize"]
    return {
        name.removesuffix("Function").lower(): resource["Properties"].get("MemorySize", default)
        for name, resource in template["Resources"].items()
        if resource.get("Type") == "AWS::Serverless::Function"
    }


def tiers(day, schedule_day):
    """The tiers a scheduled snapshot on `day` carries under the bench policy (weekly on Sunday, monthly on the 1st,
    yearly in January), as the snapshot function tags them."""
    names = ["daily"]
    if day.weekday() == 6:
        names.append("weekly")
    if day.day == schedule_day:
        names.append("monthly")
        if day.month == 1:
            names.append("yearly")
    return "+".join(names)


def seed_fleet(port, databases, snapshots, today):
    """Reset the emulator and seed `databases` tagged instances with `snapshots` daily snapshots each (the newest
    yesterday at 02:00) and their DR copies; the DB identifiers."""
    post(port, "/moto-api/reset")
    client("s3", PRIMARY, port).create_bucket(Bucket=LEDGER_BUCKET)
    client("s3", PRIMARY, port).create_bucket(Bucket=REPORTS_BUCKET)
    client("sns", PRIMARY, port).create_topic(Name=TOPIC)
    primary_key = client("kms", PRIMARY, port).create_key(Description="bench databases")["KeyMetadata"]["Arn"]
    dr_kms = client("kms", DR, port)
    dr_key = dr_kms.create_key(Description="Lifeboat DR copies")["KeyMetadata"]["Arn"]
    dr_kms.create_alias(AliasName="alias/lifeboat-dr", TargetKeyId=dr_key)
    for region in (PRIMARY, DR):
        subnets = [s["SubnetId"] for s in client("ec2", region, port).describe_subnets()["Subnets"]]
        client("rds", region, port).create_db_subnet_group(
            DBSubnetGroupName="lifeboat-drills", DBSubnetGroupDescription="drills", SubnetIds=subnets
        )
    rds = client("rds", PRIMARY, port)
    names = [f"bench-db-{n:04d}" for n in range(databases)]
    for name in names:
        rds.create_db_instance(
            DBInstanceIdentifier=name,
            Engine="postgres",
            EngineVersion="16.4",
            DBInstanceClass="db.t3.micro",
            AllocatedStorage=20,
            MasterUsername="bench",
            MasterUserPassword="bench-password",
            StorageEncrypted=True,
            KmsKeyId=primary_key,
            BackupRetentionPeriod=7,
            Tags=[{"Key": "lifeboat:backup", "Value": "true"}, {"Key": "cost-center", "Value": "cc-42"}],
        )
    batch = []
    for name in names:
        for age in range(1, snapshots + 1):
            at = today - timedelta(days=age)
            stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
            identifier = f"lifeboat-{name}-{at:%Y-%m-%d-%H%M}"
            tags = {
                "cost-center": "cc-42",
                "lifeboat:managed": "true",
                "lifeboat:deployment": DEPLOYMENT,
                "lifeboat:home-region": PRIMARY,
                "lifeboat:policy": "default",
                "lifeboat:source": name,
                "lifeboat:source-kind": "instance",
                "lifeboat:plan": "production",
                "lifeboat:tier": tiers(at, 1),
                "lifeboat:trigger": "schedule",
                "lifeboat:created-at": stamp,
            }
            batch.append(
                {"region": PRIMARY, "database": name, "identifier": identifier, "created_at": stamp, "tags": tags}
            )
            copied = dict(
                tags,
                **{
                    "lifeboat:copied-from": f"arn:aws:rds:{PRIMARY}:{ACCOUNT}:snapshot:{identifier}",
                    "lifeboat:source-region": PRIMARY,
                    "lifeboat:copied-at": (at + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                },
            )
            batch.append(
                {
                    "region": DR,
                    "database_region": PRIMARY,
                    "database": name,
                    "identifier": f"{identifier}-from-{PRIMARY}",
                    "created_at": stamp,
                    "tags": copied,
                    "kms_key_id": dr_key,
                }
            )
            if len(batch) >= SEED_BATCH:
                post(port, "/_lifeboat/seed-snapshots", json.dumps({"snapshots": batch}).encode())
                batch = []
    if batch:
        post(port, "/_lifeboat/seed-snapshots", json.dumps({"snapshots": batch}).encode())
    return names


def publish_free_storage(port, names):
    """What RDS publishes each minute and the monitor reads: every instance's FreeStorageSpace (16 GiB free), a
    minute ago (the newest sample a run finds); straight to the emulator, not counted."""
    cloudwatch = client("cloudwatch", PRIMARY, port)
    sampled = datetime.now(timezone.utc) - timedelta(minutes=1)
    for start in range(0, len(names), 1000):
        cloudwatch.put_metric_data(
            Namespace="AWS/RDS",
            MetricData=[
                {
                    "MetricName": "FreeStorageSpace",
                    "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": name}],
                    "Timestamp": sampled,
                    "Value": 16.0 * 2**30,
                }
                for name in names[start : start + 1000]
            ],
        )


def bench_policy(path, daily_days, max_delete_fraction=None):
    """infra/policy.yaml, with the daily tier and the DR copies kept `daily_days` days."""
    text = (ROOT / "infra/policy.yaml").read_text()
    text = re.sub(r"daily: 30d", f"daily: {daily_days}d", text, count=1)
    text = re.sub(r"retain_days: 90\n", f"retain_days: {daily_days}\n", text, count=1)
    if max_delete_fraction is not None:
        text = re.sub(r"max_delete_fraction: [0-9.]+", f"max_delete_fraction: {max_delete_fraction}", text)
    path.write_text(text)
    return path


def environment(proxy, policy_file, function):
    """The deployment's environment of one function (as infra/template.yaml sets it), talking to the proxy."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "AWS_REGION": PRIMARY,
        "AWS_DEFAULT_REGION": PRIMARY,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL": proxy.endpoint,
        "AWS_LAMBDA_FUNCTION_NAME": f"lifeboat-{function}",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(template_memory_mb()[function]),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/lifeboat-{function}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
        "LIFEBOAT_DEPLOYMENT": DEPLOYMENT,
        "LIFEBOAT_POLICY_FILE": str(policy_file),
        "LIFEBOAT_LEDGER_BUCKET": LEDGER_BUCKET,
        "LIFEBOAT_REPORTS_BUCKET": REPORTS_BUCKET,
        "LIFEBOAT_TOPIC_ARN": TOPIC_ARN,
        "LIFEBOAT_DR_REGIONS": DR,
        "LIFEBOAT_CONCURRENCY": "8",
        "RUST_LOG": "info",
    }
    return env


def event_for(path, when):
    """The sample event at `path`, happening at `when`."""
    event = json.loads((ROOT / path).read_text())
    if "time" in event:
        event["time"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    return event


def summary_of(answer):
    """A short account of a function's answer: its counts, or its error."""
    if not isinstance(answer, dict):
        return str(answer)[:120]
    if "errorType" in answer or "errorMessage" in answer:
        return f"error: {answer.get('errorMessage', '')[:160]}"
    counts = answer.get("counts")
    text = ", ".join(f"{k} {v}" for k, v in counts.items() if v) if isinstance(counts, dict) else ""
    if answer.get("run_errors"):
        text += f"; {len(answer['run_errors'])} run error(s)"
    if answer.get("continuation"):
        text += f"; continues: {answer['continuation']}"
    return text or "nothing to do"


def run_fleet(binaries, port, proxy, databases, snapshots, work, log, functions, bulk=False, bulk_timeout=None):
    """Seed one fleet and run every function on it (and the continuations they queue); one record per run."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    today = now.replace(hour=2, minute=0, second=0)
    if today > now:
        today -= timedelta(days=1)
    seeding = time.perf_counter()
    names = seed_fleet(port, databases, snapshots, today)
    print(f"  seeded {databases} databases x {snapshots} snapshots (+ DR copies) in {time.perf_counter() - seeding:.0f} s")
    if bulk:
        policy = bench_policy(work / f"policy-bulk-{snapshots}.yaml", BULK_DAILY_DAYS, max_delete_fraction=1.0)
    else:
        policy = bench_policy(work / f"policy-{snapshots}.yaml", snapshots - 2)
    records = []
    proxy.take()
    proxy.queued()
    runs = [(function, event_for(path, today if function == "snapshot" else now), 0) for function, path in functions]
    while runs:
        function, event, continuation = runs.pop(0)
        timeout = bulk_timeout if bulk else LAMBDA_TIMEOUT_SECONDS
        if function == "monitor":
            publish_free_storage(port, names)
        result = run_function(binaries[function], environment(proxy, policy, function), event, log, timeout)
        counts, upstream = proxy.take()
        # What the function queued for itself (continuations) runs next, as Lambda runs it once this one ends.
        runs[:0] = [(function, queued, continuation + 1) for queued in proxy.queued()]
        scenario = "bulk deletion" if bulk else "steady state"
        if continuation:
            scenario += f", continuation {continuation}"
        (work / f"answer-{function}-{databases}x{snapshots}-{scenario.replace(' ', '-').replace(',', '')}.json").write_text(
            json.dumps(result["answer"], indent=1)
        )
        record = {
            "function": function,
            "databases": databases,
            "snapshots_per_database": snapshots,
            "scenario": scenario,
            "timeout_s": timeout,
            "answer_bytes": result["answer_bytes"],
            "ok": result["ok"],
            "outcome": summary_of(result["answer"]),
            "requests": sum(counts.values()),
            "by_operation": {f"{service}:{op}": n for (service, op), n in sorted(counts.items())},
            "start_ms": round(result["start_ms"], 1),
            "invoke_ms": round(result["invoke_ms"], 1),
            "total_ms": round(result["total_ms"], 1),
            "emulator_ms": round(upstream * 1000, 1),
            "own_ms": round(result["total_ms"] - upstream * 1000, 1),
            "peak_rss_mib": round(result["peak_rss_mib"], 1),
        }
        records.append(record)
        print(
            f"  {function:<9} {record['requests']:>7} requests {record['invoke_ms'] / 1000:>8.2f} s"
            f"  peak {record['peak_rss_mib']:>5.1f} MiB  answer {record['answer_bytes'] / 1024:>7.1f} KiB"
            f"  {record['outcome']}"
        )
    return records


# ---------------------------------------------------------------------------------------------------------------
# Tables


def table(headers, rows):
    """A Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join("---" for _ in headers) + " |"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def main_operations(record, limit=4):
    """The operations that make most of a run's requests."""
    top = sorted(record["by_operation"].items(), key=lambda item: -item[1])[:limit]
    return ", ".join(f"{op.split(':', 1)[1]} {n}" for op, n in top)


def fleet_table(records):
    rows = [
        (
            r["function"],
            f"{r['databases']:,} x {r['snapshots_per_database']}"
            + ("" if r["scenario"] == "steady state" else f" ({r['scenario']}, timeout {r['timeout_s']} s)"),
            f"{r['requests']:,}",
            main_operations(r),
            f"{r['invoke_ms'] / 1000:.2f}",
            f"{r['peak_rss_mib']:.1f}",
            f"{r['answer_bytes'] / 1024:.0f}" + (" (over 6 MiB)" if r["answer_bytes"] > ANSWER_LIMIT_BYTES else ""),
            r["outcome"],
        )
        for r in records
    ]
    return table(
        [
            "function",
            "fleet (databases x snapshots)",
            "AWS requests",
            "most frequent",
            "run (s)",
            "peak MiB",
            "answer KiB",
            "outcome",
        ],
        rows,
    )


def cold_start_table(records, sizes):
    rows = []
    for r in records:
        size = sizes.get(r["function"])
        rows.append(
            (
                r["function"],
                f"{r['start_ms']:.1f}",
                f"{r['invoke_ms']:.1f}",
                r["requests"],
                f"{r['emulator_ms']:.1f}",
                f"{r['own_ms']:.1f}",
                f"{r['peak_rss_mib']:.1f}",
                f"{size / 2**20:.1f}" if size else "?",
            )
        )
    return table(
        [
            "function",
            "process start to first poll (ms)",
            "first invocation (ms)",
            "its AWS requests",
            "of which emulator (ms)",
            "cold start without the emulator (ms)",
            "peak MiB",
            "binary MiB",
        ],
        rows,
    )


def compare(old_path, records):
    """Request counts and run times against an earlier run's JSON."""
    old = {
        (r["function"], r["databases"], r["snapshots_per_database"], r["scenario"]): r
        for r in json.loads(Path(old_path).read_text())["fleets"]
    }
    rows = []
    for r in records:
        before = old.get((r["function"], r["databases"], r["snapshots_per_database"], r["scenario"]))
        if before:
            rows.append(
                (
                    r["function"],
                    f"{r['databases']} x {r['snapshots_per_database']}",
                    f"{before['requests']} -> {r['requests']}",
                    f"{before['invoke_ms'] / 1000:.2f} -> {r['invoke_ms'] / 1000:.2f}",
                )
            )
    return table(["function", "fleet", "requests", "run (s)"], rows)


def summarize_planning(criterion_dir, simulation_output):
    """The criterion estimates (mean time of each benchmark) and the copy simulation's table, as JSON."""
    planning = []
    for estimates in sorted(Path(criterion_dir).glob("*/*/new/estimates.json")):
        benchmark = json.loads((estimates.parent / "benchmark.json").read_text())
        mean = json.loads(estimates.read_text())["mean"]
        planning.append(
            {
                "benchmark": benchmark["full_id"],
                "mean_s": mean["point_estimate"] / 1e9,
                "ci95_s": [mean["confidence_interval"]["lower_bound"] / 1e9, mean["confidence_interval"]["upper_bound"] / 1e9],
            }
        )
    lines = Path(simulation_output).read_text().splitlines()
    simulation = [line for line in lines if line.startswith("|")]
    return {"planning": planning, "copy_simulation": simulation}


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--summarize-planning":
        print(json.dumps(summarize_planning(sys.argv[2], sys.argv[3]), indent=2))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binaries", required=True, help="directory of cargo lambda's builds (target/lambda)")
    parser.add_argument("--fleets", default="10x30,100x30,1000x30,10x90,100x90,1000x90")
    parser.add_argument("--bulk", action="store_true", help="add the largest fleet's bulk deletion run")
    parser.add_argument("--bulk-fleet", default="1000x30", help="the bulk deletion's fleet")
    parser.add_argument("--bulk-timeout", type=int, default=240, help="the bulk deletion's Lambda timeout (s)")
    parser.add_argument("--only", default="", help="comma-separated functions (all when empty)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--extra", help="JSON of the planning benchmarks and the copy simulation, merged in")
    parser.add_argument("--compare", help="an earlier run's JSON")
    args = parser.parse_args()

    binaries = {name: Path(args.binaries) / f"lifeboat-{name}" / "bootstrap" for name, _ in FUNCTIONS}
    missing = [str(path) for path in binaries.values() if not path.exists()]
    if missing:
        sys.exit(f"bench: missing release builds (cargo lambda build --release): {', '.join(missing)}")
    functions = [f for f in FUNCTIONS if not args.only or f[0] in args.only.split(",")]
    fleets = [tuple(int(n) for n in spec.split("x")) for spec in args.fleets.split(",") if spec]
    work = ROOT / ".lifeboat/bench"
    work.mkdir(parents=True, exist_ok=True)
    log = open(work / "functions.log", "w")

    emulator, port = start_emulator(work / "moto.log")
    proxy = CountingProxy(port)
    records = []
    try:
        for databases, snapshots in fleets:
            print(f"== fleet: {databases} databases x {snapshots} daily snapshots")
            records += run_fleet(binaries, port, proxy, databases, snapshots, work, log, functions)
        if args.bulk:
            databases, snapshots = (int(n) for n in args.bulk_fleet.split("x"))
            print(
                f"== bulk deletion: {databases} databases x {snapshots} snapshots, retention shortened to"
                f" {BULK_DAILY_DAYS} days, a {args.bulk_timeout} s timeout"
            )
            retention = [f for f in FUNCTIONS if f[0] == "retention"]
            records += run_fleet(
                binaries, port, proxy, databases, snapshots, work, log, retention, True, args.bulk_timeout
            )
    finally:
        emulator.terminate()
        emulator.wait()

    sizes = {name: path.stat().st_size for name, path in binaries.items()}
    smallest = min(fleets)
    cold = [
        r
        for r in records
        if (r["databases"], r["snapshots_per_database"]) == smallest and r["scenario"] == "steady state"
    ]
    result = {
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip(),
        "taken_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {"cpus": os.cpu_count(), "kernel": os.uname().release, "machine": os.uname().machine},
        "binary_bytes": sizes,
        "fleets": records,
    }
    if args.extra and Path(args.extra).exists():
        result.update(json.loads(Path(args.extra).read_text()))
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")

    print("\n## AWS requests and wall time per run (emulator on loopback)\n")
    print(fleet_table(records))
    print(f"\n## Cold start ({smallest[0]} databases x {smallest[1]} snapshots; a fresh process per function)\n")
    print(cold_start_table(cold, sizes))
    if result.get("planning"):
        print("\n## Planning at scale (criterion, mean)\n")
        print(table(["benchmark", "time (s)"], [(p["benchmark"], f"{p['mean_s']:.3f}") for p in result["planning"]]))
    if result.get("copy_simulation"):
        print("\n## Copy backlog (simulation; makespan against the lower bound)\n")
        print("\n".join(result["copy_simulation"]))
    if args.compare:
        print(f"\n## Against {args.compare}\n")
        print(compare(args.compare, records))
    print(f"\nwritten: {args.out}")


if __name__ == "__main__":
    main()
