#!/usr/bin/env python3
"""OCI helpers for the image tests.

lib-oci.py layout DIR TAG [--arch ARCH] [--index] LAYER...
    An OCI image layout in DIR: each LAYER (a directory, packed with numeric
    owner 0:0 unless the files say otherwise, or a .tar file taken as it is)
    becomes a gzip layer, in order; a config for linux/ARCH (default: this
    host); the manifest under TAG in index.json, or with --index, an image
    index (listing that one manifest with its platform) under TAG.
lib-oci.py badtar OUT KIND
    A tar layer that must be refused: dotdot, absolute, symlink (a member
    through a symlink), whiteout-up (.wh... in a directory).
lib-oci.py registry PORTFILE DIR [LEVEL]
    Runs docker-registry (the CNCF distribution registry) on a free port of
    127.0.0.1 with its storage in DIR, logging at LEVEL (default error; info
    logs every request) to stderr; writes the port to PORTFILE once it
    answers /v2/; stops it on SIGTERM.
lib-oci.py freeport
    Prints a port of 127.0.0.1 nobody listens on (now).
lib-oci.py stub LAYOUT PORTFILE LOGFILE
    A registry answering from the image layout LAYOUT (any repository name;
    the tag names an index.json entry), logging "METHOD PATH STATUS":
      open/...    anonymous
      token/...   a bearer token from /token, given for the basic credentials kp:secret
      denied/...  a bearer challenge whose token endpoint refuses everyone
      missing/... 404 for everything
      broken/...  500 for everything
      short/...   blobs announce their length, send half of it and close
    HEAD, POST, PUT and PATCH (a push) get the same challenge for token/
    and denied/, and 405 otherwise.
"""
import base64
import gzip
import hashlib
import http.server
import io
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
import urllib.request

GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386",
          "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}


def blob(layout, data):
    d = hashlib.sha256(data).hexdigest()
    os.makedirs(f"{layout}/blobs/sha256", exist_ok=True)
    with open(f"{layout}/blobs/sha256/{d}", "wb") as f:
        f.write(data)
    return f"sha256:{d}", len(data)


def pack_dir(path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name in sorted(os.listdir(path)):
            t.add(os.path.join(path, name), arcname=name, filter=lambda i: (setattr(i, "mtime", 0), i)[1])
    return buf.getvalue()


def layout(args):
    out, tag, rest = args[0], args[1], args[2:]
    arch = GOARCH.get(platform.machine(), platform.machine())
    as_index = False
    layers = []
    while rest:
        a = rest.pop(0)
        if a == "--arch":
            arch = rest.pop(0)
        elif a == "--index":
            as_index = True
        else:
            layers.append(a)
    os.makedirs(out, exist_ok=True)
    descs, diff_ids = [], []
    for path in layers:
        raw = pack_dir(path) if os.path.isdir(path) else open(path, "rb").read()
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
        d, n = blob(out, gzip.compress(raw, mtime=0))
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": n})
    config = {"architecture": arch, "os": "linux", "config": {},
              "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    cd, cn = blob(out, json.dumps(config).encode())
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cn},
                "layers": descs}
    md, mn = blob(out, json.dumps(manifest).encode())
    entry = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": mn}
    if as_index:
        entry["platform"] = {"architecture": arch, "os": "linux"}
        inner = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [entry]}
        d, n = blob(out, json.dumps(inner).encode())
        entry = {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": d, "size": n}
    entry["annotations"] = {"org.opencontainers.image.ref.name": tag}
    path = f"{out}/index.json"
    index = json.load(open(path)) if os.path.exists(path) else {"schemaVersion": 2, "manifests": []}
    index["manifests"] = [m for m in index["manifests"]
                          if m.get("annotations", {}).get("org.opencontainers.image.ref.name") != tag] + [entry]
    json.dump(index, open(path, "w"))
    json.dump({"imageLayoutVersion": "1.0.0"}, open(f"{out}/oci-layout", "w"))


def badtar(args):
    out, kind = args
    buf = io.BytesIO()

    def add(t, name, data=b"x", **kw):
        i = tarfile.TarInfo(name)
        for k, v in kw.items():
            setattr(i, k, v)
        if i.type == tarfile.REGTYPE:
            i.size = len(data)
            t.addfile(i, io.BytesIO(data))
        else:
            t.addfile(i)
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        add(t, "etc/ok")
        if kind == "dotdot":
            add(t, "etc/../../escape")
        elif kind == "absolute":
            add(t, "/etc/escape")
        elif kind == "symlink":
            add(t, "evil", type=tarfile.SYMTYPE, linkname="/etc")
            add(t, "evil/passwd")
        elif kind == "whiteout-up":
            add(t, "etc/.wh...")
        else:
            sys.exit(f"unknown kind {kind}")
    open(out, "wb").write(buf.getvalue())


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def registry(args):
    portfile, root = args[:2]
    level = args[2] if len(args) > 2 else "error"
    port = free_port()
    os.makedirs(root, exist_ok=True)
    config = f"{root}.yml"
    with open(config, "w") as f:
        f.write(f"version: 0.1\nlog:\n  level: {level}\nstorage:\n  filesystem:\n    rootdirectory: {root}\n"
                f"  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n")
    child = subprocess.Popen(["docker-registry", "serve", config], stdout=sys.stderr)
    signal.signal(signal.SIGTERM, lambda *_: (child.terminate(), sys.exit(0)))
    for _ in range(200):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
            break
        except Exception:
            if child.poll() is not None:
                sys.exit("docker-registry exited")
            time.sleep(0.05)
    open(portfile, "w").write(str(port))
    child.wait()


def stub(args):
    root, portfile, logfile = args
    lock = threading.Lock()
    index = json.load(open(f"{root}/index.json"))
    tags = {m["annotations"]["org.opencontainers.image.ref.name"]: m for m in index["manifests"]}
    good = "Basic " + base64.b64encode(b"kp:secret").decode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_request(self, code="-", size="-"):
            with lock, open(logfile, "a") as f:
                f.write(f"{self.command} {self.path} {code}\n")

        def answer(self, status, body=b"", ctype="application/json", headers=()):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in headers:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def do_HEAD(self):
            host = f"http://127.0.0.1:{self.server.server_port}"
            parts = self.path.split("?")[0].split("/")
            kind = parts[2] if len(parts) > 2 else ""
            if kind in ("token", "denied") and self.headers.get("Authorization") != "Bearer good":
                repo = "/".join(parts[2:-2])
                challenge = f'Bearer realm="{host}/token?{kind}",service="stub",scope="repository:{repo}:pull,push"'
                self.send_response(401)
                self.send_header("WWW-Authenticate", challenge)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = b"" if self.command == "HEAD" else b"{}"
            self.send_response(405)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_PUT = do_PATCH = do_HEAD

        def do_GET(self):
            host = f"http://127.0.0.1:{self.server.server_port}"
            if self.path.startswith("/token"):
                if "denied" not in self.path and self.headers.get("Authorization") == good:
                    return self.answer(200, json.dumps({"token": "good"}).encode())
                return self.answer(401, b"{}")
            parts = self.path.split("/")
            if self.path == "/v2/" or len(parts) < 5:
                return self.answer(200, b"{}")
            kind = parts[2]
            if kind == "missing":
                return self.answer(404, b'{"errors":[{"code":"NAME_UNKNOWN"}]}')
            if kind == "broken":
                return self.answer(500, b"oops")
            if kind in ("token", "denied") and self.headers.get("Authorization") != "Bearer good":
                repo = "/".join(parts[2:-2])
                challenge = f'Bearer realm="{host}/token?{kind}",service="stub",scope="repository:{repo}:pull"'
                return self.answer(401, b"{}", headers=[("WWW-Authenticate", challenge)])
            what, ref = parts[-2], parts[-1]
            if what == "manifests" and ref in tags:
                ref = tags[ref]["digest"]
            path = f"{root}/blobs/sha256/{ref.split(':')[-1]}"
            if not os.path.isfile(path):
                return self.answer(404, b"{}")
            data = open(path, "rb").read()
            ctype = json.loads(data).get("mediaType", "") if what == "manifests" else "application/octet-stream"
            if kind == "short" and what == "blobs" and len(data) > 1000:
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.answer(200, data, ctype)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    open(portfile, "w").write(str(server.server_port))
    server.serve_forever()


{"layout": layout, "badtar": badtar, "registry": registry, "stub": stub,
 "freeport": lambda _: print(free_port())}[sys.argv[1]](sys.argv[2:])
