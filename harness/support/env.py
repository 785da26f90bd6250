"""The environment of every process the harness starts: an allow-list, never os.environ
whole. Flink logs its Python workers' whole environment, and run folders are shared: a
token in the user's shell must not reach either."""
from __future__ import annotations

import os
from collections.abc import Mapping

# What any process needs to find its tools, its home and its locale, and to reach the
# Docker engine the user chose.
RUNTIME = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "JAVA_HOME",
           "DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY")
RUNTIME_PREFIXES = ("LC_",)
# Only for what downloads (pip, Maven, debootstrap, image builds): the proxy, its CA and
# the package tools' own settings. Engines, brokers and pipelines talk to loopback or to
# the run's own containers, so they never get these (a proxy URL may hold a password).
NETWORK = ("http_proxy", "https_proxy", "no_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
           "ALL_PROXY", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "MAVEN_OPTS",
           "MAVEN_ARGS", "JAVA_TOOL_OPTIONS")
NETWORK_PREFIXES = ("PIP_",)


def child_env(own: Mapping[str, str] | None = None, network: bool = False,
              parent: Mapping[str, str] | None = None) -> dict[str, str]:
    """The allowed variables of `parent` (this process's environment), then `own`, the
    variables the caller sets for this child on purpose."""
    source = os.environ if parent is None else parent
    names = RUNTIME + (NETWORK if network else ())
    prefixes = RUNTIME_PREFIXES + (NETWORK_PREFIXES if network else ())
    env = {k: v for k, v in source.items() if k in names or k.startswith(prefixes)}
    return {**env, **(own or {})}
