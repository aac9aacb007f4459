"""The proxy configuration renders in both modes and nginx accepts it; a missing setting is named."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.production.harness import ROOT

sys.path.insert(0, str(ROOT / "deploy"))  # deploy/ is a folder of scripts, not a package
import render_proxy  # noqa: E402

BASE = {"PROXY_LISTEN": "127.0.0.1", "PROXY_PORT": "18443", "PROXY_SERVER_NAME": "_", "RASA_PORT": "5005",
        "INBOX_PORT": "8080", "PROXY_ACCESS_LOG": "/dev/null"}


@pytest.mark.parametrize("tls", ["on", "off"])
def test_both_modes_render_and_pass_nginx_t(tmp_path, tls):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-keyout", str(key),
                    "-out", str(cert), "-subj", "/CN=localhost"], check=True, capture_output=True)
    env = {**BASE, "PROXY_TLS": tls, "PROXY_RUN_DIR": str(tmp_path), "PROXY_TLS_CERT": str(cert),
           "PROXY_TLS_KEY": str(key)}
    text = render_proxy.render(env)
    assert ("ssl_protocols TLSv1.2 TLSv1.3;" in text) == (tls == "on")
    assert "${" not in text.replace("${before}", "").replace("${after}", "")
    (tmp_path / "nginx.conf").write_text(text)
    checked = subprocess.run(["nginx", "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-e", "stderr"],
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


def test_missing_settings_are_listed():
    with pytest.raises(ValueError, match="PROXY_RUN_DIR, PROXY_TLS_CERT, PROXY_TLS_KEY"):
        render_proxy.render({**BASE, "PROXY_TLS": "on"})
    with pytest.raises(ValueError, match="PROXY_TLS must be on or off"):
        render_proxy.render({**BASE, "PROXY_TLS": "yes"})
