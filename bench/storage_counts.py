"""Table operations counted by kind (point read, query, insert, write, transaction) where the SDK sends them."""

from __future__ import annotations

import threading
from collections import Counter
from urllib.parse import unquote, urlsplit

from azure.core.credentials import AzureNamedKeyCredential
from azure.core.pipeline.transport import RequestsTransport
from azure.data.tables import TableServiceClient

from shared.http import sdk_transport
from shared.storage.accounts import TableAccounts

# A query is any read that does not name one entity by its keys: a scan when its filter lacks the partition.
SCANS = frozenset({"query"})


def operation(method: str, url: str) -> str:
    """What one Table Storage request is, from its method and URL."""
    path = unquote(urlsplit(url).path)
    if method == "GET":
        return "point read" if "PartitionKey=" in path and "RowKey=" in path else "query"
    if method == "POST":
        return "transaction" if path.endswith("$batch") else "insert"
    if method == "DELETE":
        return "delete"
    return "write"  # PUT, PATCH, MERGE: an update or upsert of one entity


class CountingTransport(RequestsTransport):
    """The app's SDK transport (its pooled session), counting every storage request it sends, by kind."""

    def __init__(self) -> None:
        app = sdk_transport()
        super().__init__(session=app.session, session_owner=False, connection_verify=app.connection_config.verify)
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def send(self, request, **kwargs):
        with self._lock:
            self.counts[operation(request.method, request.url)] += 1
        return super().send(request, **kwargs)


class CountingAccounts(TableAccounts):
    """Table access (Azurite) whose every request is counted."""

    def __init__(self, settings) -> None:
        super().__init__(settings)
        self.transport = CountingTransport()

    def service(self, region):
        endpoint = self.endpoint(region)
        with self._lock:
            if endpoint not in self._services:
                account = urlsplit(endpoint).path.strip("/").split("/")[0]
                key = self.settings.azurite_account_key.get_secret_value()
                self._services[endpoint] = TableServiceClient(
                    endpoint=endpoint, credential=AzureNamedKeyCredential(account, key), transport=self.transport)
            return self._services[endpoint]


class CountingProxy:
    """An ASGI reverse proxy in front of Azurite's table endpoint that counts each request by kind, whichever
    process sends it (the Functions host's app): point the TABLE_ENDPOINT settings at it."""

    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self.counts: Counter[str] = Counter()
        self._client = None

    async def __call__(self, scope, receive, send) -> None:
        import httpx

        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        query = scope["query_string"].decode()
        url = self.target + scope["raw_path"].decode().split("?")[0] + (f"?{query}" if query else "")
        self.counts[operation(scope["method"], url)] += 1
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=30)
        headers = [(k.decode(), v.decode()) for k, v in scope["headers"] if k.lower() not in HOP_HEADERS]
        response = await self._client.request(scope["method"], url, headers=headers, content=body)
        await send({"type": "http.response.start", "status": response.status_code,
                    "headers": [(k.encode(), v.encode()) for k, v in response.headers.items()
                                if k.lower() not in HOP_HEADERS]})
        await send({"type": "http.response.body", "body": response.content})


HOP_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection", "keep-alive",
                         "content-encoding"})
