"""What pktsim does with each field of the Kubernetes kinds it reads: the model's boundary.

Every field Kubernetes defines for Pod, the workloads, Service, EndpointSlice, NetworkPolicy,
Namespace and Node (``pktsim/data/api-fields.json``, from the OpenAPI document of release
1.37) is in one of these classes, written as the first letter of its entry below:

``m`` modelled
    read and acted on, as the readers in this package say (a note names the limits: a value
    outside them is reported there, e.g. an SCTP container port).
``i`` inert
    it does not change where a packet goes in what pktsim models (an image, a resource
    limit, a volume); read no further.  The note says why.
``w`` warned
    it would change the packets, pktsim does not model it yet: when the field is set, a
    warning names it and says what pktsim does instead.  ``w!VALUE`` warns only when the
    value differs from ``VALUE`` (the default, or the one value that is modelled).
``p`` placement
    a scheduling constraint: pktsim's scheduler puts a pod without ``spec.nodeName`` on the
    least-loaded node (``pktsim.model.cluster._place_pods``), so the field is warned about
    only when the pod is not pinned by ``nodeName``.

A type not listed (a volume source, a probe, ...) lies under an inert field and is never
classified.  ``tests/scenario/test_boundary.py`` walks the API fields from each kind and fails
on any field it reaches that has no entry here, and ``docs/model.md`` prints this table
(``boundary_table``).
"""

from __future__ import annotations

_PLACED = "pktsim places a pod without spec.nodeName on the least-loaded node"
_PROBES = "probes are not sent: readiness comes from status.conditions (ready if none)"
_RUN = "containers' programs are not run: what listens comes from ports[]"
_SCHED = "scheduling and lifecycle, not networking"
_META = "bookkeeping of the API server"
_STATUS = "status reported by controllers; what pktsim reads of it is listed beside"
_HOSTPORT = ("the portmap CNI plugin's chains (CNI-HOSTPORT-DNAT, CNI-DN-...): the node's "
             "port is DNATed to the pod; the scheduler places no two pods on one hostPort")
_HINTS = ("kube-proxy keeps to the endpoints hinted for its node or zone when every ready "
          "endpoint has hints and one matches (CategorizeEndpoints, pktsim.kubeproxy.topology)")

_OBJECT = {"apiVersion": "m", "kind": "m", "metadata": "m", "spec": "m", "status": "m"}
_WORKLOAD = {"selector": "m:matchLabels must match the template's labels",
             "template": "m", "replicas": "m", "minReadySeconds": f"i:{_SCHED}",
             "revisionHistoryLimit": f"i:{_SCHED}"}

FIELDS: dict[str, dict[str, str]] = {
    "V1Pod": _OBJECT,
    "V1Service": _OBJECT,
    "V1Node": _OBJECT,
    "V1Namespace": {**_OBJECT, "spec": f"i:{_META}", "status": f"i:{_STATUS}"},
    "V1NetworkPolicy": {k: v for k, v in _OBJECT.items() if k != "status"},
    "V1EndpointSlice": {"apiVersion": "m", "kind": "m", "metadata": "m",
                        "addressType": "m:IPv4 and IPv6 (the Service's IPv6 endpoints); "
                                       "FQDN slices are skipped with a warning",
                        "endpoints": "m", "ports": "m"},
    "V1ObjectMeta": {
        "name": "m", "namespace": "m", "labels": "m:a Node's topology.kubernetes.io/zone is "
                                                   "its zone",
        "ownerReferences": "m:the controller",
        "annotations": "m:only a Service's service.kubernetes.io/topology-mode: Auto, which is "
                       "warned about (no proportional zone hints: node CPU is not modelled)",
        "creationTimestamp": f"i:{_META}",
        "deletionGracePeriodSeconds": f"i:{_META}", "finalizers": f"i:{_META}",
        "deletionTimestamp": "w:a terminating object is modelled as if it were not being "
                             "deleted",
        "generateName": f"i:{_META}: pktsim names workload pods itself",
        "generation": f"i:{_META}", "managedFields": f"i:{_META}",
        "resourceVersion": f"i:{_META}", "selfLink": f"i:{_META}", "uid": f"i:{_META}"},
    "V1OwnerReference": {"kind": "m", "name": "m", "controller": "m",
                         "apiVersion": f"i:{_META}", "blockOwnerDeletion": f"i:{_META}",
                         "uid": f"i:{_META}"},
    # -- Pod ---------------------------------------------------------------------------------
    "V1PodSpec": {
        "containers": "m", "initContainers": "m:those with restartPolicy Always, sidecars",
        "nodeName": "m", "hostNetwork": "m", "hostname": "m", "subdomain": "m",
        "dnsPolicy": "m", "dnsConfig": "m", "readinessGates": "m",
        "nodeSelector": "p:DaemonSets honour it",
        "affinity": "p", "tolerations": "p", "topologySpreadConstraints": "p",
        "schedulerName": "p!default-scheduler", "schedulingGates": "p",
        "hostAliases": "w:not written into /etc/hosts: names resolve through DNS only",
        "securityContext": "m:walked for sysctls",
        "ephemeralContainers": "i:debug containers have no ports",
        "setHostnameAsFQDN": "i:the hostname inside the container only",
        "hostnameOverride": "i:the hostname inside the container only",
        "enableServiceLinks": "i:environment variables",
        "serviceAccount": "i:Calico's profile is ksa.NS.default",
        "serviceAccountName": "i:Calico's profile is ksa.NS.default",
        "automountServiceAccountToken": "i:a volume",
        "activeDeadlineSeconds": f"i:{_SCHED}", "evictionResponders": f"i:{_SCHED}",
        "hostIPC": "i:not the network namespace", "hostPID": "i:not the network namespace",
        "hostUsers": "i:not the network namespace",
        "shareProcessNamespace": "i:not the network namespace",
        "imagePullSecrets": "i:images", "os": "i:Linux nodes are modelled",
        "overhead": f"i:{_SCHED}", "preemptionPolicy": f"i:{_SCHED}",
        "priority": f"i:{_SCHED}", "priorityClassName": f"i:{_SCHED}",
        "resourceClaims": f"i:{_SCHED}", "resources": f"i:{_SCHED}",
        "restartPolicy": f"i:{_SCHED}", "runtimeClassName": f"i:{_SCHED}",
        "schedulingGroup": f"i:{_SCHED}",
        "terminationGracePeriodSeconds": "m:how long a deleted pod serves before it is killed",
        "volumes": "i:storage"},
    "V1PodSecurityContext": {
        "sysctls": "w:the pod's network sysctls are the defaults of the kernel modelled",
        **{k: "i:permissions, not networking" for k in (
            "appArmorProfile", "fsGroup", "fsGroupChangePolicy", "runAsGroup", "runAsNonRoot",
            "runAsUser", "seLinuxChangePolicy", "seLinuxOptions", "seccompProfile",
            "supplementalGroups", "supplementalGroupsPolicy", "windowsOptions")}},
    "V1Container": {
        "name": "m", "ports": "m", "restartPolicy": "m:Always makes an init container a "
                                                    "sidecar",
        "args": f"i:{_RUN}", "command": f"i:{_RUN}", "env": f"i:{_RUN}", "envFrom": f"i:{_RUN}",
        "image": f"i:{_RUN}", "imagePullPolicy": f"i:{_RUN}", "workingDir": f"i:{_RUN}",
        "stdin": f"i:{_RUN}", "stdinOnce": f"i:{_RUN}", "tty": f"i:{_RUN}",
        "lifecycle": f"i:{_RUN}", "livenessProbe": f"i:{_PROBES}",
        "readinessProbe": f"i:{_PROBES}", "startupProbe": f"i:{_PROBES}",
        "resizePolicy": f"i:{_SCHED}", "resources": f"i:{_SCHED}",
        "restartPolicyRules": f"i:{_SCHED}", "securityContext": "i:permissions",
        "terminationMessagePath": f"i:{_SCHED}", "terminationMessagePolicy": f"i:{_SCHED}",
        "volumeDevices": "i:storage", "volumeMounts": "i:storage"},
    "V1ContainerPort": {"containerPort": "m", "name": "m",
                        "protocol": "m:TCP, UDP; SCTP ports are warned about and not opened",
                        "hostPort": f"m:{_HOSTPORT}", "hostIP": "m:IPv4 (an IPv6 one is refused)"},
    "V1PodDNSConfig": {"nameservers": "m", "searches": "m", "options": "m"},
    "V1PodDNSConfigOption": {"name": "m", "value": "m"},
    "V1PodReadinessGate": {"conditionType": "m"},
    "V1PodStatus": {
        "phase": "m:Succeeded and Failed pods are skipped with a warning",
        "conditions": "m", "podIP": "m:the primary family's", "podIPs": "m:one per family",
        "hostIP": "m:checked to be an address", "hostIPs": "m:one per family",
        **{k: f"i:{_STATUS}" for k in (
            "allocatedResources", "containerStatuses", "ephemeralContainerStatuses",
            "extendedResourceClaimStatus", "initContainerStatuses", "message",
            "nodeAllocatableResourceClaimStatuses", "nominatedNodeName",
            "observedGeneration", "qosClass", "reason", "resize", "resourceClaimStatuses",
            "resources", "startTime", "volumeHealth")}},
    "V1PodCondition": {"type": "m", "status": "m",
                       **{k: f"i:{_STATUS}" for k in ("lastProbeTime", "lastTransitionTime",
                                                      "message", "observedGeneration",
                                                      "reason")}},
    "V1PodIP": {"ip": "m"},
    "V1HostIP": {"ip": "m"},
    # -- workloads ---------------------------------------------------------------------------
    "V1Deployment": _OBJECT, "V1ReplicaSet": _OBJECT, "V1StatefulSet": _OBJECT,
    "V1DaemonSet": _OBJECT,
    "V1PodTemplateSpec": {"metadata": "m", "spec": "m"},
    "V1DeploymentSpec": {**_WORKLOAD, "paused": f"i:{_SCHED}",
                         "progressDeadlineSeconds": f"i:{_SCHED}",
                         "minReadySeconds": "m:how long a Ready pod waits to count as "
                                            "available in a rollout",
                         "strategy": "m:rollouts during a run, pktsim.control.deployment"},
    "V1DeploymentStrategy": {"type": "m", "rollingUpdate": "m"},
    "V1RollingUpdateDeployment": {"maxSurge": "m", "maxUnavailable": "m"},
    "V1ReplicaSetSpec": {k: v for k, v in _WORKLOAD.items() if k != "revisionHistoryLimit"},
    "V1StatefulSetSpec": {**_WORKLOAD, "serviceName": "m", "ordinals": "m",
                          "persistentVolumeClaimRetentionPolicy": "i:storage",
                          "podManagementPolicy": f"i:{_SCHED}",
                          "updateStrategy": "i:pktsim models the rolled-out state",
                          "volumeClaimTemplates": "i:storage"},
    "V1StatefulSetOrdinals": {"start": "m"},
    "V1DaemonSetSpec": {**{k: v for k, v in _WORKLOAD.items() if k != "replicas"},
                        "updateStrategy": "i:pktsim models the rolled-out state"},
    **{f"V1{k}Status": {"*": f"i:{_STATUS}"} for k in ("Deployment", "ReplicaSet",
                                                         "StatefulSet", "DaemonSet")},
    # -- Service -----------------------------------------------------------------------------
    "V1ServiceSpec": {
        "type": "m", "selector": "m", "ports": "m:SCTP ports too (kube-proxy's -m sctp rules)",
        "clusterIP": "m:IPv4 or IPv6 (the IPv6 one served by kube-proxy's ip6tables rules)",
        "clusterIPs": "m:one per family",
        "externalName": "m", "externalIPs": "m",
        "externalTrafficPolicy": "m:Local: the load balancer sends to a node whose "
                                 "health check passes",
        "internalTrafficPolicy": "m", "loadBalancerIP": "m", "loadBalancerSourceRanges": "m",
        "publishNotReadyAddresses": "m", "sessionAffinity": "m", "sessionAffinityConfig": "m",
        "ipFamilies": "m:checked against the cluster's families, the primary defaulted "
                      "(initIPFamilyFields)",
        "ipFamilyPolicy": "m:SingleStack, PreferDualStack (both families when the cluster "
                          "has them), RequireDualStack (needs a dual-stack cluster)",
        "allocateLoadBalancerNodePorts": "w!true:nodePorts are allocated and kube-proxy "
                                         "opens them anyway",
        "healthCheckNodePort": "m:kube-proxy's health-check server answers on it, 200 or "
                               "503 by the node's ready endpoints (pkg/proxy/healthcheck)",
        "loadBalancerClass": "i:one load balancer implementation is modelled",
        "trafficDistribution": "m:PreferClose, PreferSameZone, PreferSameNode: the "
                               "EndpointSlice controller's hints (trafficdist)"},
    "V1ServicePort": {"port": "m", "protocol": "m", "name": "m", "targetPort": "m",
                      "nodePort": "m", "appProtocol": "i:a hint to layer-7 implementations"},
    "V1SessionAffinityConfig": {"clientIP": "m"},
    "V1ClientIPConfig": {"timeoutSeconds": "m"},
    "V1ServiceStatus": {"loadBalancer": "m", "conditions": f"i:{_STATUS}"},
    "V1LoadBalancerStatus": {"ingress": "m"},
    "V1LoadBalancerIngress": {
        "ip": "m:the first of each family",
        "hostname": "w:a load balancer known by name only gets no address in pktsim",
        "ipMode": "w!VIP:kube-proxy's rules for the address are written as for ipMode VIP",
        "ports": f"i:{_STATUS}"},
    # -- EndpointSlice -----------------------------------------------------------------------
    "V1Endpoint": {
        "addresses": "m", "conditions": "m", "hostname": "m", "nodeName": "m",
        "targetRef": "m", "topology": "m:discovery/v1beta1's kubernetes.io/hostname and "
                                      "topology.kubernetes.io/zone",
        "deprecatedTopology": "i:read by nothing in kube-proxy",
        "zone": "m:set from the pod's node; read only through hints",
        "hints": f"m:{_HINTS}"},
    "V1EndpointHints": {"forZones": "m:at most 8", "forNodes": "m:at most 8"},
    "V1ForZone": {"name": "m"},
    "V1ForNode": {"name": "m"},
    "V1EndpointConditions": {"ready": "m:unset is true", "serving": "m:unset is true",
                             "terminating": "m:serving terminating endpoints are used when "
                                            "none is ready (CategorizeEndpoints)"},
    "DiscoveryV1EndpointPort": {"port": "m", "protocol": "m", "name": "m",
                                "appProtocol": "i:a hint to layer-7 implementations"},
    "V1ObjectReference": {"kind": "m", "name": "m", "namespace": "m",
                          **{k: f"i:{_META}" for k in ("apiVersion", "fieldPath",
                                                       "resourceVersion", "uid")}},
    # -- NetworkPolicy -----------------------------------------------------------------------
    "V1NetworkPolicySpec": {"podSelector": "m", "policyTypes": "m", "ingress": "m",
                            "egress": "m"},
    "V1NetworkPolicyIngressRule": {"from": "m", "ports": "m"},
    "V1NetworkPolicyEgressRule": {"to": "m", "ports": "m"},
    "V1NetworkPolicyPeer": {"podSelector": "m", "namespaceSelector": "m", "ipBlock": "m"},
    "V1NetworkPolicyPort": {"protocol": "m", "port": "m", "endPort": "m"},
    "V1IPBlock": {"cidr": "m", "except": "m"},
    "V1LabelSelector": {"matchLabels": "m", "matchExpressions": "m"},
    "V1LabelSelectorRequirement": {"key": "m", "operator": "m", "values": "m"},
    # -- Node --------------------------------------------------------------------------------
    "V1NodeSpec": {"podCIDR": "m:ignored on Calico, as Calico IPAM ignores it",
                   "podCIDRs": "m:one per family",
                   "taints": f"i:{_PLACED}, whatever the taints",
                   "unschedulable": f"i:{_PLACED}, even a cordoned one",
                   **{k: f"i:{_META}" for k in ("configSource", "externalID",
                                                "podPreemptionPolicy", "providerID")}},
    "V1NodeStatus": {"addresses": "m:the first InternalIP of each family",
                     **{k: f"i:{_STATUS}" for k in (
                         "allocatable", "capacity", "conditions", "config", "daemonEndpoints",
                         "declaredFeatures", "features", "images", "nodeInfo", "phase",
                         "runtimeHandlers", "volumesAttached", "volumesInUse")}},
    "V1NodeAddress": {"type": "m", "address": "m"},
}


def entry(type_name: str, field: str) -> tuple[str, str, str] | None:
    """``(class letter, the value that is not warned about, note)`` of one field, if listed.

    The class letter is ``m``, ``i``, ``w`` or ``p``; the second item is ``VALUE`` of a
    ``w!VALUE`` entry (``""`` when every value set is warned about)."""
    fields = FIELDS.get(type_name)
    if fields is None:
        return None
    text = fields.get(field, fields.get("*"))
    if text is None:
        return None
    head, _, note = text.partition(":")
    letter, _, unless = head.partition("!")
    return letter, unless, note
