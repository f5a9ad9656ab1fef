"""moto server with test-only additions: RDS's failed snapshots, RDS's snapshot quotas, CloudWatch over CBOR.

moto finishes every snapshot and copy at once and never fails one, so nothing local could show what Lifeboat does
with a copy that RDS failed. This launcher serves moto exactly as `moto_server` does, plus one request:

    POST /_lifeboat/snapshot-status?region=R&identifier=ID&status=S[&kind=cluster][&account=A]

which sets the status of the manual DB snapshot (or, with kind=cluster, DB cluster snapshot) ID in region R of
account A (moto's default account unless given) to S, for example `failed` or `incompatible-restore`, as RDS does
when a copy fails. Answers 204, or 404 naming what it could not find. Arguments are moto_server's (-H, -p).

For benchmarks of large fleets (scripts/bench), one more request seeds snapshot history at once, without one
CreateDBSnapshot per snapshot and dated in the past, as RDS would have made it:

    POST /_lifeboat/seed-snapshots   {"snapshots": [{"region": R, "database": DB, "identifier": ID,
                                      "created_at": "2026-11-20T02:00:00Z", "tags": {"k": "v"},
                                      "database_region": R2, "kms_key_id": K}, ...]}

makes each manual DB snapshot ID of DB instance DB (in database_region, R when absent) in region R, available,
created at created_at, with the tags and, when given, the KMS key. Answers 204, or 400/404 naming what it could not do.

It also answers RDS's DescribeAccountAttributes, which moto lacks: the AccountQuotas ManualSnapshots and
ManualClusterSnapshots of the calling region, with Used counted from moto's manual snapshots there and Max the
server's snapshot quota (MOTO_RDS_SNAPSHOT_LIMIT), as RDS reports them.

And it serves CloudWatch's alarms and metric data in the protocol the Rust SDK speaks, Smithy RPC v2 CBOR, which
moto does not (it answers 404): a POST with the header `smithy-protocol: rpc-v2-cbor` to
`/service/GraniteServiceVersion20100801/operation/OP`, OP one of DescribeAlarms, PutMetricAlarm, SetAlarmState,
DeleteAlarms, PutMetricData and GetMetricData, is decoded (CBOR body), carried out on moto's CloudWatch backend of the
request's region (from its signature's credential scope) in moto's default account, and answered in RPC v2 CBOR
(timestamps as tag 1, epoch seconds); errors are status 400 with `{"__type": "com.amazonaws.cloudwatch#CODE",
"message": ...}`. Only metric alarms exist here: DescribeAlarms answers no composite alarms, filters by AlarmNames,
AlarmNamePrefix, StateValue and AlarmTypes, refuses the filters it does not implement, and answers in one page, as
GetMetricData does (MetricStat queries and metric math on them, as moto computes them). Every other CloudWatch
operation is left to moto.

Pages as RDS does: moto answers DescribeDBSnapshots, DescribeDBClusterSnapshots and DescribeDBClusters in one page
however many there are; here they are paged by MaxRecords (100 by default) with a Marker, as RDS pages them, so that
a listing costs here the requests it costs on RDS.

One fix of moto's RDS, so that failback behaves as on RDS: a promoted read replica stops reporting its source
(`ReadReplicaSourceDBInstanceIdentifier`; moto keeps it, and a second promotion is then accepted where RDS refuses
it).
"""

import io
import json
import re
import uuid
from datetime import datetime, timezone
from urllib.parse import parse_qs

import cbor2
import moto.server as server
from moto.cloudwatch.models import cloudwatch_backends
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult
from moto.rds.responses import RDSResponse
from moto.rds.exceptions import InvalidParameterValue
from moto.rds.models import DBSnapshot, RDSBackend, rds_backends

PATH = "/_lifeboat/snapshot-status"
SEED_PATH = "/_lifeboat/seed-snapshots"


def set_snapshot_status(environ, start_response):
    """Set a snapshot's status from the request's query; the WSGI answer."""
    query = {key: values[0] for key, values in parse_qs(environ.get("QUERY_STRING", "")).items()}
    missing = [name for name in ("region", "identifier", "status") if name not in query]
    if missing:
        return answer(start_response, "400 Bad Request", f"missing query parameters: {', '.join(missing)}")
    backend = rds_backends[query.get("account", DEFAULT_ACCOUNT_ID)][query["region"]]
    snapshots = backend.cluster_snapshots if query.get("kind") == "cluster" else backend.database_snapshots
    snapshot = snapshots.get(query["identifier"])
    if snapshot is None:
        return answer(
            start_response, "404 Not Found", f"no {query.get('kind', 'instance')} snapshot {query['identifier']} in {query['region']}"
        )
    snapshot.status = query["status"]
    return answer(start_response, "204 No Content", "")


def seed_snapshots(environ, start_response):
    """Create the snapshots of the request's JSON body directly in moto's RDS backends; the WSGI answer."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    try:
        request = json.loads(environ["wsgi.input"].read(length) or b"{}")
        snapshots = request["snapshots"]
    except (ValueError, KeyError) as error:
        return answer(start_response, "400 Bad Request", f"a JSON body with a `snapshots` list is needed: {error}")
    for item in snapshots:
        missing = [name for name in ("region", "database", "identifier", "created_at") if name not in item]
        if missing:
            return answer(start_response, "400 Bad Request", f"snapshot {item}: missing {', '.join(missing)}")
        backend = rds_backends[DEFAULT_ACCOUNT_ID][item["region"]]
        source = rds_backends[DEFAULT_ACCOUNT_ID][item.get("database_region", item["region"])]
        database = source.databases.get(item["database"])
        if database is None:
            return answer(start_response, "404 Not Found", f"no DB instance {item['database']}")
        created = datetime.fromisoformat(item["created_at"].replace("Z", "+00:00")).astimezone(timezone.utc)
        created = created.replace(tzinfo=None)
        tags = [{"Key": key, "Value": value} for key, value in item.get("tags", {}).items()]
        snapshot = DBSnapshot(backend, database, item["identifier"], "manual", tags, created, item.get("kms_key_id"))
        snapshot.created = created
        backend.database_snapshots[snapshot.db_snapshot_identifier] = snapshot
    return answer(start_response, "204 No Content", "")


def answer(start_response, status, text):
    """A plain-text WSGI answer."""
    body = text.encode()
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def signed_region(environ, service):
    """The region of a request to `service` (its signature's credential scope), or None for other services."""
    match = re.search(
        rf"Credential=[^/]+/[0-9]+/([a-z0-9-]+)/{re.escape(service)}/", environ.get("HTTP_AUTHORIZATION", "")
    )
    return match.group(1) if match else None


def describe_account_attributes(region, start_response):
    """RDS DescribeAccountAttributes: the manual snapshot quotas of `region`, with the snapshots in use."""
    backend = rds_backends[DEFAULT_ACCOUNT_ID][region]
    quotas = [
        ("ManualSnapshots", backend.database_snapshots),
        ("ManualClusterSnapshots", backend.cluster_snapshots),
    ]
    items = "".join(
        f"<AccountQuota><AccountQuotaName>{name}</AccountQuotaName>"
        f"<Used>{sum(1 for s in snapshots.values() if s.snapshot_type == 'manual')}</Used>"
        f"<Max>{backend.SNAPSHOT_QUOTA}</Max></AccountQuota>"
        for name, snapshots in quotas
    )
    body = (
        '<DescribeAccountAttributesResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/">'
        f"<DescribeAccountAttributesResult><AccountQuotas>{items}</AccountQuotas></DescribeAccountAttributesResult>"
        f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
        "</DescribeAccountAttributesResponse>"
    ).encode()
    start_response("200 OK", [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))])
    return [body]


CLOUDWATCH_CBOR_PATH = re.compile(r"/service/GraniteServiceVersion20100801/operation/([A-Za-z]+)")

CLOUDWATCH_ERROR_NAMESPACE = "com.amazonaws.cloudwatch"


class CloudWatchRequestError(Exception):
    """A CloudWatch request this emulator refuses: CloudWatch's error code and message."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


def cbor_cloudwatch_operation(environ):
    """The CloudWatch operation an RPC v2 CBOR request calls, if this emulator serves it; None otherwise."""
    if environ.get("REQUEST_METHOD") != "POST" or environ.get("HTTP_SMITHY_PROTOCOL") != "rpc-v2-cbor":
        return None
    match = CLOUDWATCH_CBOR_PATH.fullmatch(environ.get("PATH_INFO", ""))
    if match is None or signed_region(environ, "monitoring") is None:
        return None
    operation = match.group(1)
    return operation if operation in CLOUDWATCH_OPERATIONS else None


def answer_cloudwatch(operation, environ, start_response):
    """Carry out a CloudWatch alarm operation sent in RPC v2 CBOR; its WSGI answer in RPC v2 CBOR."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    backend = cloudwatch_backends[DEFAULT_ACCOUNT_ID][signed_region(environ, "monitoring")]
    try:
        request = cbor2.loads(body) if body else {}
        if not isinstance(request, dict):
            raise CloudWatchRequestError("InvalidParameterValue", "the request body is not a CBOR map")
        output = CLOUDWATCH_OPERATIONS[operation](backend, request)
        status = "200 OK"
    except cbor2.CBORDecodeError as error:
        status, output = "400 Bad Request", cloudwatch_error("InvalidParameterValue", f"the body is not CBOR: {error}")
    except (CloudWatchRequestError, ServiceException) as error:
        status, output = "400 Bad Request", cloudwatch_error(error.code, error.message)
    encoded = cbor2.dumps(output)
    start_response(
        status,
        [
            ("smithy-protocol", "rpc-v2-cbor"),
            ("Content-Type", "application/cbor"),
            ("Content-Length", str(len(encoded))),
            ("x-amzn-RequestId", str(uuid.uuid4())),
        ],
    )
    return [encoded]


def cloudwatch_error(code, message):
    """An RPC v2 CBOR error body."""
    return {"__type": f"{CLOUDWATCH_ERROR_NAMESPACE}#{code}", "message": message}


def required(request, name):
    """The request's parameter `name`, or CloudWatch's MissingParameter error."""
    if request.get(name) is None:
        raise CloudWatchRequestError("MissingParameter", f"the request must contain the parameter {name}")
    return request[name]


def cbor_timestamp(moment):
    """A timestamp as RPC v2 CBOR carries it: tag 1, epoch seconds (moto keeps naive UTC datetimes)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return cbor2.CBORTag(1, moment.timestamp())


def describe_alarms(backend, request):
    """DescribeAlarms: moto's metric alarms that pass the request's filters, in one page."""
    unsupported = [name for name in ("ActionPrefix", "ChildrenOfAlarmName", "ParentsOfAlarmName") if name in request]
    if unsupported:
        raise CloudWatchRequestError(
            "InvalidParameterCombination", f"the emulator does not implement {', '.join(unsupported)}"
        )
    names = request.get("AlarmNames")
    prefix = request.get("AlarmNamePrefix")
    state = request.get("StateValue")
    # As CloudWatch: without AlarmTypes, only metric alarms are described.
    metric_alarms_asked = "MetricAlarm" in request.get("AlarmTypes", ["MetricAlarm"])
    alarms = [
        alarm
        for alarm in backend.describe_alarms()
        if metric_alarms_asked
        and alarm.rule is None
        and (not names or alarm.name in names)
        and (prefix is None or alarm.name.startswith(prefix))
        and (state is None or alarm.state_value == state)
    ]
    described = [described_metric_alarm(alarm) for alarm in sorted(alarms, key=lambda alarm: alarm.name)]
    return {"MetricAlarms": described, "CompositeAlarms": []}


def described_metric_alarm(alarm):
    """A moto metric alarm as DescribeAlarms describes it (fields moto does not hold are left out)."""
    fields = {
        "AlarmName": alarm.name,
        "AlarmArn": alarm.alarm_arn,
        "AlarmDescription": alarm.description,
        "AlarmConfigurationUpdatedTimestamp": cbor_timestamp(alarm.configuration_updated_timestamp),
        "ActionsEnabled": bool(alarm.actions_enabled),
        "OKActions": list(alarm.ok_actions),
        "AlarmActions": list(alarm.alarm_actions),
        "InsufficientDataActions": list(alarm.insufficient_data_actions),
        "StateValue": alarm.state_value,
        "StateReason": alarm.state_reason,
        "StateReasonData": alarm.state_reason_data,
        "StateUpdatedTimestamp": cbor_timestamp(alarm.state_updated_timestamp),
        "MetricName": alarm.metric_name,
        "Namespace": alarm.namespace,
        "Statistic": alarm.statistic,
        "ExtendedStatistic": alarm.extended_statistic,
        "Dimensions": [{"Name": d.name, "Value": d.value} for d in alarm.dimensions],
        "Period": None if alarm.period is None else int(alarm.period),
        "Unit": alarm.unit,
        "EvaluationPeriods": int(alarm.evaluation_periods),
        "DatapointsToAlarm": None if alarm.datapoints_to_alarm is None else int(alarm.datapoints_to_alarm),
        "Threshold": None if alarm.threshold is None else float(alarm.threshold),
        "ComparisonOperator": alarm.comparison_operator,
        "TreatMissingData": alarm.treat_missing_data,
    }
    return {name: value for name, value in fields.items() if value is not None}


def put_metric_alarm(backend, request):
    """PutMetricAlarm: creates or replaces a metric alarm on one metric (metric math is not emulated)."""
    if "Metrics" in request:
        raise CloudWatchRequestError("InvalidParameterCombination", "the emulator does not implement Metrics")
    backend.put_metric_alarm(
        name=required(request, "AlarmName"),
        namespace=request.get("Namespace"),
        metric_name=request.get("MetricName"),
        comparison_operator=required(request, "ComparisonOperator"),
        evaluation_periods=required(request, "EvaluationPeriods"),
        period=request.get("Period"),
        threshold=request.get("Threshold"),
        statistic=request.get("Statistic"),
        description=request.get("AlarmDescription"),
        dimensions=request.get("Dimensions", []),
        alarm_actions=request.get("AlarmActions", []),
        datapoints_to_alarm=request.get("DatapointsToAlarm"),
        extended_statistic=request.get("ExtendedStatistic"),
        ok_actions=request.get("OKActions", []),
        insufficient_data_actions=request.get("InsufficientDataActions", []),
        unit=request.get("Unit"),
        actions_enabled=request.get("ActionsEnabled", True),
        treat_missing_data=request.get("TreatMissingData"),
        evaluate_low_sample_count_percentile=request.get("EvaluateLowSampleCountPercentile"),
        tags=request.get("Tags", []),
    )
    return {}


def set_alarm_state(backend, request):
    """SetAlarmState: ResourceNotFound for an alarm that does not exist, as CloudWatch."""
    name = required(request, "AlarmName")
    if name not in backend.alarms:
        raise CloudWatchRequestError("ResourceNotFound", f"alarm {name} does not exist")
    backend.set_alarm_state(
        name, required(request, "StateReason"), request.get("StateReasonData"), required(request, "StateValue")
    )
    return {}


def delete_alarms(backend, request):
    """DeleteAlarms: names that do not exist are ignored."""
    backend.delete_alarms(required(request, "AlarmNames"))
    return {}


def naive_utc(moment):
    """A request's timestamp as moto keeps its metric data's: naive UTC."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment


def put_metric_data(backend, request):
    """PutMetricData: the data points go into moto's backend (timestamps naive UTC, as moto keeps them)."""
    data = [
        dict(datum, Timestamp=naive_utc(datum["Timestamp"])) if "Timestamp" in datum else datum
        for datum in required(request, "MetricData")
    ]
    backend.put_metric_data(required(request, "Namespace"), data)
    return {}


def get_metric_data(backend, request):
    """GetMetricData: moto's answer to the MetricStat queries (and metric math on them), in one page."""
    results = backend.get_metric_data(
        queries=required(request, "MetricDataQueries"),
        start_time=naive_utc(required(request, "StartTime")),
        end_time=naive_utc(required(request, "EndTime")),
        scan_by=request.get("ScanBy") or "TimestampAscending",
    )
    return {
        "MetricDataResults": [
            {
                "Id": result["id"],
                "Label": result["label"],
                "Values": [float(value) for value in result["values"]],
                "Timestamps": [cbor_timestamp(moment) for moment in result["timestamps"]],
                "StatusCode": result["status_code"],
            }
            for result in results
        ],
        "Messages": [],
    }


CLOUDWATCH_OPERATIONS = {
    "GetMetricData": get_metric_data,
    "PutMetricData": put_metric_data,
    "DescribeAlarms": describe_alarms,
    "PutMetricAlarm": put_metric_alarm,
    "SetAlarmState": set_alarm_state,
    "DeleteAlarms": delete_alarms,
}


class LifeboatEmulator(server.DomainDispatcherApplication):
    """moto's application, with the test-only requests and the CBOR CloudWatch alarm operations in front."""

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == PATH and environ.get("REQUEST_METHOD") == "POST":
            return set_snapshot_status(environ, start_response)
        if environ.get("PATH_INFO") == SEED_PATH and environ.get("REQUEST_METHOD") == "POST":
            return seed_snapshots(environ, start_response)
        cloudwatch_operation = cbor_cloudwatch_operation(environ)
        if cloudwatch_operation is not None:
            return answer_cloudwatch(cloudwatch_operation, environ, start_response)
        region = signed_region(environ, "rds") if environ.get("REQUEST_METHOD") == "POST" else None
        if region is not None:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(body)
            if parse_qs(body.decode(errors="replace")).get("Action") == ["DescribeAccountAttributes"]:
                return describe_account_attributes(region, start_response)
        return super().__call__(environ, start_response)


def promote_read_replica(backend, db_kwargs):
    """moto's PromoteReadReplica, after which the instance reports no source, as on RDS."""
    database = PROMOTE_READ_REPLICA(backend, db_kwargs)
    database.source_db_instance_identifier = None
    return database


PROMOTE_READ_REPLICA = RDSBackend.promote_read_replica


# Listings whose further pages are still to be asked for, by token; the oldest go first past MAX_LISTINGS.
LISTINGS = {}
MAX_LISTINGS = 256


def paged(describe, key):
    """moto's `describe` answer, its list `key` paged by MaxRecords (20 to 100, 100 by default) and an opaque
    Marker, as RDS pages it. A listing's first page lists and keeps the whole answer under a token of its own; its
    further pages (Marker `TOKEN:OFFSET`) are cut from that (moto would filter every snapshot again for each page),
    so listings running at once, or one abandoned before its last page, never mix. A marker it does not hold is
    refused (InvalidParameterValue), as RDS refuses one."""

    def answer(self):
        marker = self.params.get("Marker") or ""
        try:
            limit = min(max(int(self.params.get("MaxRecords") or 100), 20), 100)
        except ValueError:
            limit = 100
        if marker:
            # As RDS: a marker this emulator did not give, or no longer holds, is refused, never read as a new listing.
            token, _, offset = marker.partition(":")
            items = LISTINGS.get(token)
            if items is None or not offset.isdigit():
                raise InvalidParameterValue(f"The marker {marker} is not valid: it has expired or was never given")
            start = int(offset)
        else:
            token, start = uuid.uuid4().hex, 0
            items = list(describe(self)._result[key])
            LISTINGS[token] = items
            while len(LISTINGS) > MAX_LISTINGS:
                LISTINGS.pop(next(iter(LISTINGS)))
        result = {key: items[start : start + limit]}
        if start + limit < len(items):
            result["Marker"] = f"{token}:{start + limit}"
        else:
            LISTINGS.pop(token, None)
        return ActionResult(result)

    return answer


if __name__ == "__main__":
    RDSBackend.promote_read_replica = promote_read_replica
    for name, key in (
        ("describe_db_snapshots", "DBSnapshots"),
        ("describe_db_cluster_snapshots", "DBClusterSnapshots"),
        ("describe_db_clusters", "DBClusters"),
    ):
        setattr(RDSResponse, name, paged(getattr(RDSResponse, name), key))
    server.DomainDispatcherApplication = LifeboatEmulator
    server.main()
