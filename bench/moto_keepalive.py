"""moto's WSGI application, for a server that keeps connections alive (waitress).

moto_server (werkzeug's development server) answers every request with `Connection: close`,
so each DynamoDB request would open a new TCP connection: a cost no client pays against AWS,
where connections are reused. bench/move.sh serves the DynamoDB state through this instead
(`waitress-serve --call moto_keepalive:app` is not needed: `app` is the application).
"""
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

app = DomainDispatcherApplication(create_backend_app)
