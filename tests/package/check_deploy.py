#!/usr/bin/env python3
"""tests/package/check_deploy.py DEPLOY_DIR: deploy/kubernetes/ agrees
with the manifest it ships (DEPLOY_DIR/kubernetes/host.json).

Parses every YAML file of DEPLOY_DIR/kubernetes/ and checks, against the
manifest (parsed, never run: the package test runs a host):
  - the probes: readiness GETs /readyz, liveness /healthz, both exact
    routes of a server to an instance of status.so, on that server's
    listen port, which binds every address (the kubelet probes the pod IP);
  - the Prometheus annotations: scrape, that port, the /metrics route;
  - terminationGracePeriodSeconds > preStop sleep + shutdown_timeout;
  - the Service's targetPort is that port, its selector the pods' labels;
  - the ConfigMap is generated from host.json and mounted where the host's
    --config reads it; the reload sidecar signals the manifest's pid_file,
    in a pod that shares its process namespace.
Each disagreement is one line naming the file and the place; exit 1.
"""
import json
import os
import re
import sys

import yaml

STATUS_SO = "status.so"
CONF_DIR = "/etc/ioloop-host"
UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class Checker:
    def __init__(self):
        self.errors = []

    def check(self, ok, where, msg):
        if not ok:
            self.errors.append("%s: %s" % (where, msg))
        return ok


def seconds(value):
    """A manifest duration ("250ms", "10s", "1.5m", or seconds)."""
    if isinstance(value, (int, float)):
        return float(value)
    m = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)", value)
    if m is None:
        raise ValueError("not a duration: %r" % value)
    return float(m.group(1)) * UNITS[m.group(2)]


def listen_port(addr):
    """(host, port) of "HOST:PORT" or "[IPV6]:PORT"."""
    host, _, port = addr.rpartition(":")
    return host, int(port)


def addresses(server):
    """A server's "listen": one address or a list of them."""
    listen = server.get("listen", [])
    return [listen] if isinstance(listen, str) else listen


def load_yaml(path, c):
    """Every document of path, as (kind, object) pairs."""
    with open(path, encoding="utf-8") as f:
        try:
            docs = [d for d in yaml.safe_load_all(f) if d is not None]
        except yaml.YAMLError as e:
            c.check(False, path, "not YAML: %s" % str(e).replace("\n", " "))
            return []
    for i, d in enumerate(docs):
        c.check(isinstance(d, dict) and "apiVersion" in d and "kind" in d,
                "%s: document %d" % (path, i), "no apiVersion or kind")
    return [(d.get("kind"), d) for d in docs if isinstance(d, dict)]


def status_routes(manifest):
    """{path: server} of the exact routes to an instance of status.so."""
    status = {p["name"] for p in manifest.get("plugins", [])
              if os.path.basename(p.get("path", "")) == STATUS_SO}
    out = {}
    for s in manifest.get("servers", []):
        for r in s.get("routes", []):
            if r.get("plugin") in status and "path" in r:
                out[r["path"]] = s
    return out


def container_port(container, port):
    """The number a probe's or Service's port (number or name) means."""
    if isinstance(port, int):
        return port
    for p in container.get("ports", []):
        if p.get("name") == port:
            return p.get("containerPort")
    return None


def check_probe(c, where, container, kind, want_path, routes):
    probe = container.get(kind, {}).get("httpGet")
    if not c.check(probe is not None, where, "%s: no httpGet" % kind):
        return
    path = probe.get("path")
    c.check(path == want_path, where,
            "%s: path %r, want %r" % (kind, path, want_path))
    server = routes.get(path)
    if not c.check(server is not None, where,
                   "%s: %r is not a route to %s in host.json"
                   % (kind, path, STATUS_SO)):
        return
    port = container_port(container, probe.get("port"))
    ports = {listen_port(a)[1] for a in addresses(server)}
    c.check(port in ports, where,
            "%s: port %r, but server %r of host.json listens on %s"
            % (kind, port, server["name"], sorted(ports)))


def main(deploy_dir):
    c = Checker()
    kdir = os.path.join(deploy_dir, "kubernetes")
    mpath = os.path.join(kdir, "host.json")
    with open(mpath, encoding="utf-8") as f:
        manifest = json.load(f)

    objs = []
    for name in sorted(os.listdir(kdir)):
        if name.endswith((".yaml", ".yml")):
            path = os.path.join(kdir, name)
            objs += [(path, kind, d) for kind, d in load_yaml(path, c)]
    deployments = [(p, d) for p, k, d in objs if k == "Deployment"]
    services = [(p, d) for p, k, d in objs if k == "Service"]
    kustom = [(p, d) for p, k, d in objs if k == "Kustomization"]
    c.check(len(deployments) == 1, kdir, "want one Deployment")
    c.check(len(services) == 1, kdir, "want one Service")
    c.check(len(kustom) == 1, kdir, "want one kustomization.yaml")
    if c.errors:
        return c.errors

    routes = status_routes(manifest)
    for path in ("/healthz", "/readyz", "/metrics"):
        c.check(path in routes, mpath,
                "no route %r to an instance of %s" % (path, STATUS_SO))

    dpath, dep = deployments[0]
    pod = dep["spec"]["template"]
    spec = pod["spec"]
    host = next((x for x in spec["containers"] if x["name"] == "ioloop-host"),
                None)
    if not c.check(host is not None, dpath, "no container \"ioloop-host\""):
        return c.errors
    where = "%s: container ioloop-host" % dpath

    check_probe(c, where, host, "readinessProbe", "/readyz", routes)
    check_probe(c, where, host, "livenessProbe", "/healthz", routes)
    for path in ("/healthz", "/readyz"):
        for addr in addresses(routes.get(path, {})):
            c.check(listen_port(addr)[0] in ("0.0.0.0", "[::]"), mpath,
                    "%s is served on %s: the kubelet probes the pod's IP"
                    % (path, addr))

    # Prometheus scrapes the /metrics route on its server's port.
    ann = pod.get("metadata", {}).get("annotations", {})
    c.check(ann.get("prometheus.io/scrape") == "true", dpath,
            "annotation prometheus.io/scrape is not \"true\"")
    mpath_ann = ann.get("prometheus.io/path", "/metrics")
    server = routes.get(mpath_ann)
    if c.check(server is not None, dpath,
               "annotation prometheus.io/path %r is not a route to %s"
               % (mpath_ann, STATUS_SO)):
        ports = {str(listen_port(a)[1]) for a in addresses(server)}
        c.check(ann.get("prometheus.io/port") in ports, dpath,
                "annotation prometheus.io/port %r, but %r listens on %s"
                % (ann.get("prometheus.io/port"), server["name"],
                   sorted(ports)))

    # SIGKILL only after preStop and a whole graceful stop.
    shutdown = seconds(manifest.get("shutdown_timeout", "10s"))
    command = (host.get("lifecycle", {}).get("preStop", {}).get("exec", {})
               .get("command", []))
    pre_stop = (float(command[1]) if len(command) == 2 and command[0] == "sleep"
                else None)
    if c.check(pre_stop is not None, where,
               "preStop is not [\"sleep\", SECONDS] (endpoints must drain)"):
        grace = spec.get("terminationGracePeriodSeconds", 30)
        c.check(grace > pre_stop + shutdown, dpath,
                "terminationGracePeriodSeconds %s <= preStop %g s + "
                "host.json shutdown_timeout %g s" % (grace, pre_stop, shutdown))

    # The Service sends traffic to the server's port on these pods.
    spath, svc = services[0]
    labels = pod.get("metadata", {}).get("labels", {})
    selector = svc["spec"].get("selector", {})
    c.check(selector and all(labels.get(k) == v for k, v in selector.items()),
            spath, "selector %r does not select the Deployment's pods"
            % selector)
    web = {listen_port(a)[1] for s in manifest.get("servers", [])
           for a in addresses(s)}
    for p in svc["spec"].get("ports", []):
        target = container_port(host, p.get("targetPort", p.get("port")))
        c.check(target in web, spath,
                "port %r: targetPort %r is no listen port of host.json (%s)"
                % (p.get("name"), target, sorted(web)))

    # The manifest reaches the host through the generated ConfigMap.
    kpath, kus = kustom[0]
    gen = next((g for g in kus.get("configMapGenerator", [])
                if "host.json" in g.get("files", [])), None)
    if c.check(gen is not None, kpath,
               "no configMapGenerator with files: [host.json]"):
        c.check(kus.get("generatorOptions", {})
                .get("disableNameSuffixHash") is True, kpath,
                "the ConfigMap name must not change with its content "
                "(reload in place: disableNameSuffixHash: true)")
        vols = {v["name"]: v for v in spec.get("volumes", [])}
        mounts = {m["mountPath"]: m["name"]
                  for m in host.get("volumeMounts", [])}
        vol = vols.get(mounts.get(CONF_DIR), {})
        c.check(vol.get("configMap", {}).get("name") == gen["name"], where,
                "%s is not a mount of ConfigMap %r" % (CONF_DIR, gen["name"]))
    args = host.get("args", [])
    c.check(args[-2:] == ["--config", CONF_DIR + "/host.json"], where,
            "args do not end with --config %s/host.json" % CONF_DIR)
    for r in kus.get("resources", []):
        c.check(os.path.isfile(os.path.join(kdir, r)), kpath,
                "resource %r does not exist" % r)

    # SIGHUP on change: the sidecar reads the pid_file the host writes.
    reload = next((x for x in spec["containers"] if x["name"] == "reload"),
                  None)
    if c.check(reload is not None, dpath, "no container \"reload\""):
        c.check(spec.get("shareProcessNamespace") is True, dpath,
                "shareProcessNamespace is not true: the reload sidecar "
                "cannot signal the host")
        pid_file = manifest.get("pid_file")
        c.check(pid_file is not None and
                pid_file in " ".join(reload.get("command", [])), dpath,
                "container reload does not read host.json's pid_file %r"
                % pid_file)
    return c.errors


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: check_deploy.py DEPLOY_DIR")
    errors = main(sys.argv[1])
    for e in errors:
        print(e, file=sys.stderr)
    sys.exit(1 if errors else 0)
