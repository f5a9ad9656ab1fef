"""moto server with one test-only addition: RDS's failed snapshots.

moto finishes every snapshot and copy at once and never fails one, so nothing local could show what Lifeboat does
with a copy that RDS failed. This launcher serves moto exactly as `moto_server` does, plus one request:

    POST /_lifeboat/snapshot-status?region=R&identifier=ID&status=S[&kind=cluster][&account=A]

which sets the status of the manual DB snapshot (or, with kind=cluster, DB cluster snapshot) ID in region R of
account A (moto's default account unless given) to S, for example `failed` or `incompatible-restore`, as RDS does
when a copy fails. Answers 204, or 404 naming what it could not find. Arguments are moto_server's (-H, -p).

It also answers RDS's DescribeAccountAttributes, which moto lacks: the AccountQuotas ManualSnapshots and
ManualClusterSnapshots of the calling region, with Used counted from moto's manual snapshots there and Max the
server's snapshot quota (MOTO_RDS_SNAPSHOT_LIMIT), as RDS reports them.
"""

import io
import re
import uuid
from urllib.parse import parse_qs

import moto.server as server
from moto.core import DEFAULT_ACCOUNT_ID
from moto.rds.models import rds_backends

PATH = "/_lifeboat/snapshot-status"


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


def answer(start_response, status, text):
    """A plain-text WSGI answer."""
    body = text.encode()
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def rds_region(environ):
    """The region of an RDS request (from its signature's credential scope), or None for other services."""
    match = re.search(r"Credential=[^/]+/[0-9]+/([a-z0-9-]+)/rds/", environ.get("HTTP_AUTHORIZATION", ""))
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


class LifeboatEmulator(server.DomainDispatcherApplication):
    """moto's application, with the snapshot-status request in front."""

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == PATH and environ.get("REQUEST_METHOD") == "POST":
            return set_snapshot_status(environ, start_response)
        region = rds_region(environ) if environ.get("REQUEST_METHOD") == "POST" else None
        if region is not None:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(body)
            if parse_qs(body.decode(errors="replace")).get("Action") == ["DescribeAccountAttributes"]:
                return describe_account_attributes(region, start_response)
        return super().__call__(environ, start_response)


if __name__ == "__main__":
    server.DomainDispatcherApplication = LifeboatEmulator
    server.main()
