"""nova's compute API and its metadata API in ONE gunicorn worker, each on its own port: runs INSIDE the cloud's
own venv, copied beside nova-api's gunicorn.conf.py as `popek_novaapis.py` (gunicorn's working directory is on
its sys.path), where gunicorn calls `load(<compute port>, <metadata port>)`; popek never calls `load` itself.

Two gunicorn processes held the same interpreter, the same nova modules and the same oslo.config twice (a
master and a worker each, ~118 MiB PSS for the metadata API alone, measured). Here gunicorn binds both ports
and `application` picks the app by the port of the socket that accepted the connection: gunicorn sets
SERVER_PORT from the listener's getsockname() for a TCP listener (gunicorn/http/wsgi.py, create()), never
from the Host header, so a request to the metadata port cannot reach the compute API and back.

nova's own entry points make each app: `init_application` parses the configuration once per interpreter
(`init_global_data` is run_once), then loads its paste pipeline from the first file of OS_NOVA_CONFIG_FILES
and registers its service record (nova-osapi_compute, nova-metadata) as the separate processes did.

Nova's own documentation does not support both APIs in one process (admin/wsgi, nova 33.0.0: "no longer
possible"); it works with nova 34.0.0 as measured here, and a nova upgrade may break it: the dataplane smoke
instance (metadata) and the API scenarios (compute) are what catch that. The worker has threads
(config.MULTI_API_THREADS): a metadata read never waits behind a compute request in flight.
"""
from __future__ import annotations


def dispatcher(apps: dict[str, object]):
    """A WSGI app handing each request to `apps[environ["SERVER_PORT"]]`; a port of neither is a 404."""
    def application(environ, start_response):
        app = apps.get(str(environ.get("SERVER_PORT", "")))
        if app is None:
            start_response("404 Not Found", [("Content-Type", "text/plain; charset=UTF-8")])
            return [b"no nova API on this port\n"]
        return app(environ, start_response)
    return application


def load(compute_port: int, metadata_port: int):
    """The dispatcher over nova's two apps (gunicorn's `wsgi_app = "popek_novaapis:load(8774, 8775)"`)."""
    from nova.wsgi import osapi_compute  # the compute API first: its name goes with the parsed configuration
    from nova.wsgi import metadata

    return dispatcher({str(compute_port): osapi_compute.application, str(metadata_port): metadata.application})
