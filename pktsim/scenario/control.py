"""``kind: Cluster`` ``spec.kubeProxy``, ``spec.controllers``, ``spec.kubelet``: how fast the
control loops react to ``spec.events`` (``model.timeline.ControlConfig``).

Durations are Go durations (``1s``, ``250ms``), as the components' own flags and
configuration files write them: a bare integer is refused, since ``30`` could mean seconds
(``unreachableTolerationSeconds``) or milliseconds (a flow's ``start``).  What each component
refuses is refused here, cited where checked; a default is the component's own, cited in
``model.timeline``.
"""

from __future__ import annotations

from pktsim.model.timeline import ControlConfig
from pktsim.scenario.fields import Obj, wrong_type
from pktsim.scenario.syntax import parse_duration

GROUPS = ("kubeProxy", "controllers", "kubelet")
KUBE_PROXY = ("minSyncPeriod", "syncPeriod", "conntrackCleanup")
CONTROLLERS = ("endpointUpdatesBatchPeriod", "nodeMonitorGracePeriod",
               "unreachableTolerationSeconds")
KUBELET = ("podStartup",)
GO_DURATION = "a Go duration like 0s, 250ms, 1s, 1m30s"
SECOND = 10**9
MAX_TOLERATION = 2**63 // SECOND  # tolerationSeconds is an int64 of seconds; ns must fit too


def go_duration(obj: Obj, key: str, default: int) -> int:
    """``key`` as nanoseconds, or ``default`` when unset or wrong (the problem recorded)."""
    value = obj.raw(key)
    if value is None:
        return default
    path = obj.at(key)
    if not isinstance(value, str):
        wrong_type(obj.ctx, path, value, GO_DURATION)
        return default
    text = value.strip()
    if text.startswith("-") and parse_duration(text[1:]) is not None:
        obj.ctx.error(path, value, "is negative", "0 or more (" + GO_DURATION + ")")
        return default
    nanos = parse_duration(text)
    if nanos is None:
        obj.ctx.error(path, value, "is not a valid duration", GO_DURATION)
        return default
    return nanos


def read_control(body: Obj) -> ControlConfig:
    """The three groups of ``body`` (the Cluster's ``spec``) over the defaults."""
    cfg = ControlConfig()
    _kube_proxy(body, cfg)
    ctl = body.mapping("controllers")
    ctl.unknown_keys(CONTROLLERS)
    cfg.endpoint_updates_batch_period_ns = go_duration(
        ctl, "endpointUpdatesBatchPeriod", cfg.endpoint_updates_batch_period_ns)
    cfg.node_monitor_grace_period_ns = go_duration(ctl, "nodeMonitorGracePeriod",
                                                   cfg.node_monitor_grace_period_ns)
    seconds = ctl.integer("unreachableTolerationSeconds", cfg.unreachable_toleration_ns // SECOND,
                          0, MAX_TOLERATION)
    cfg.unreachable_toleration_ns = seconds * SECOND
    kubelet = body.mapping("kubelet")
    kubelet.unknown_keys(KUBELET)
    cfg.pod_startup_ns = go_duration(kubelet, "podStartup", cfg.pod_startup_ns)
    return cfg


def _kube_proxy(body: Obj, cfg: ControlConfig) -> None:
    """kube-proxy's checks of its iptables settings (validateKubeProxyIPTablesConfiguration,
    kubernetes pkg/proxy/apis/config/validation/validation.go): syncPeriod > 0,
    minSyncPeriod >= 0 (a Go duration here cannot be negative: refused above), and
    minSyncPeriod <= syncPeriod."""
    proxy = body.mapping("kubeProxy")
    proxy.unknown_keys(KUBE_PROXY)
    cfg.min_sync_period_ns = go_duration(proxy, "minSyncPeriod", cfg.min_sync_period_ns)
    sync = go_duration(proxy, "syncPeriod", cfg.sync_period_ns)
    if proxy.has("syncPeriod") and sync == 0:
        proxy.ctx.error(proxy.at("syncPeriod"), proxy.raw("syncPeriod"),
                        "must be greater than 0", "a positive " + GO_DURATION)
    elif sync < cfg.min_sync_period_ns:
        where = "syncPeriod" if proxy.has("syncPeriod") else "minSyncPeriod"
        proxy.ctx.error(proxy.at(where), proxy.raw(where),
                        f"leaves minSyncPeriod ({_text(cfg.min_sync_period_ns)}) above "
                        f"syncPeriod ({_text(sync)})", "minSyncPeriod <= syncPeriod")
    else:
        cfg.sync_period_ns = sync
    cfg.conntrack_cleanup = proxy.boolean("conntrackCleanup", cfg.conntrack_cleanup)


def _text(nanos: int) -> str:
    """A duration as the message shows it: ``1s``, ``250ms``, ``30s``."""
    for unit, size in (("h", 3600 * SECOND), ("m", 60 * SECOND), ("s", SECOND),
                       ("ms", 10**6), ("us", 10**3)):
        if nanos and nanos % size == 0:
            return f"{nanos // size}{unit}"
    return f"{nanos}ns"
