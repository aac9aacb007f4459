"""Render the cluster profile's load balancer: the production proxy (deploy/nginx/, deploy/render_proxy.py) with
every instance in its upstreams, plus listeners on 127.0.0.1 that the services use to reach each other.

    python3 deploy/cluster/render_lb.py          # writes $PROXY_RUN_DIR/nginx.conf

RASA_PORTS, INBOX_PORTS, ACTION_SERVER_PORTS: the instances (space-separated ports on 127.0.0.1).
LB_RASA_PORT, LB_INBOX_PORT, LB_ACTIONS_PORT: internal listeners (127.0.0.1 only) in front of all instances of
Rasa's HTTP API (the inbox's resume calls), the inbox's machine API (hand-offs and statuses from the bot and the
connector) and the action servers (Rasa's action calls). nginx passes a request to the next instance when the
connection to one is refused (a dead process), and never re-sends a POST that an instance already received.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # deploy/ is a folder of scripts, not a package
import render_proxy  # noqa: E402

# A refused connection marks the instance down for this long, so a dead instance costs one failed connect
# per interval instead of one per request.
FAIL_TIMEOUT = "5s"
# Idle connections to the instances that nginx keeps open for the next request (per worker and upstream), instead
# of opening a new one for every webhook, status, action call and inbox API call. Closed after 4 s idle: before
# the backends drop them (uvicorn and the action servers' Sanic after 5 s, Rasa after 120 s), so nginx never sends
# a request on a connection the backend is closing.
UPSTREAM_KEEPALIVE = 16
UPSTREAM_KEEPALIVE_TIMEOUT = "4s"
INTERNAL = {"rasa": "LB_RASA_PORT", "inbox": "LB_INBOX_PORT", "actions": "LB_ACTIONS_PORT"}
INSTANCES = {"rasa": "RASA_PORTS", "inbox": "INBOX_PORTS", "actions": "ACTION_SERVER_PORTS"}


def ports(env: dict[str, str], name: str) -> list[str]:
    values = env.get(name, "").split()
    if not values or not all(value.isdigit() for value in values):
        raise ValueError(f"{name} must list the instances' ports, e.g. '5005 5006' (got {env.get(name)!r})")
    return values


def upstream(name: str, instance_ports: list[str]) -> str:
    servers = "".join(f"        server 127.0.0.1:{port} max_fails=1 fail_timeout={FAIL_TIMEOUT};\n"
                      for port in instance_ports)
    keepalive = f"        keepalive {UPSTREAM_KEEPALIVE};\n        keepalive_timeout {UPSTREAM_KEEPALIVE_TIMEOUT};\n"
    return f"    upstream {name} {{\n{servers}{keepalive}    }}\n"


def render(env: dict[str, str]) -> str:
    instances = {name: ports(env, variable) for name, variable in INSTANCES.items()}
    missing = [variable for variable in INTERNAL.values() if not env.get(variable, "").isdigit()]
    if missing:
        raise ValueError("The load balancer needs these environment variables: " + ", ".join(missing))
    # The production template names one instance each (RASA_PORT, INBOX_PORT); the first stands in for the render.
    text = render_proxy.render({**env, "RASA_PORT": instances["rasa"][0], "INBOX_PORT": instances["inbox"][0]})
    for name in ("rasa", "inbox"):
        single = f"    upstream {name} {{\n        server 127.0.0.1:{instances[name][0]};\n    }}\n"
        if single not in text:
            raise ValueError(f"deploy/nginx/nginx.conf.template changed: no single-server upstream {name}")
        text = text.replace(single, upstream(name, instances[name]))
    internal = upstream("actions", instances["actions"]) + "".join(
        f"    server {{\n"
        f"        listen 127.0.0.1:{env[variable]};\n"
        f"        access_log off;\n"
        f"        client_max_body_size 4m;\n"
        f"        client_body_buffer_size 4m;  # in memory: the worker may not write temporary files\n"
        f"        proxy_http_version 1.1;\n"
        f"        proxy_set_header Connection \"\";\n"
        f"        proxy_read_timeout 120s;\n"
        f"        location / {{ proxy_pass http://{name}; }}\n"
        f"    }}\n"
        for name, variable in INTERNAL.items()
    )
    body, closing = text.rstrip().rsplit("}", 1)  # the http block's closing brace
    return f"{body}    # Internal listeners of the cluster profile (deploy/cluster/render_lb.py)\n{internal}}}{closing}\n"


if __name__ == "__main__":
    render_proxy.main(render)
