"""The inspection's read-only guard on a real keystoneauth Session talking HTTP to a local server:
GET and HEAD go through, anything that could change the cloud is refused before it leaves, the
token request (POST …/auth/tokens) is allowed, and the Session is restored afterwards."""
import http.server
import threading
import types

import pytest
from keystoneauth1 import session as ks_session

from popek.checks.lab.snapshot import ReadOnlyViolation, read_only


@pytest.fixture
def server():
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self):
            seen.append((self.command, self.path))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
        do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = _answer

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    httpd.shutdown()


def test_only_reads_leave_during_an_inspection(server):
    url, seen = server
    conn = types.SimpleNamespace(session=ks_session.Session())   # the SDK's Connection exposes .session
    with read_only(conn):
        assert conn.session.get(f"{url}/servers").status_code == 200
        assert conn.session.head(f"{url}/v1/AUTH_x/c").status_code == 200
        assert conn.session.post(f"{url}/v3/auth/tokens", json={}).status_code == 200
        for method in ("post", "put", "delete", "patch"):
            with pytest.raises(ReadOnlyViolation, match=method.upper()):
                getattr(conn.session, method)(f"{url}/servers/1")
    assert seen == [("GET", "/servers"), ("HEAD", "/v1/AUTH_x/c"), ("POST", "/v3/auth/tokens")]
    assert conn.session.delete(f"{url}/after").status_code == 200          # guard removed
    assert seen[-1] == ("DELETE", "/after")
