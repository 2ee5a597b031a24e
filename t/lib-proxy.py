#!/usr/bin/env python3
"""A logging HTTP proxy on 127.0.0.1 for network tests.

usage: lib-proxy.py PORTFILE LOGFILE

Binds a free port, writes it to PORTFILE, and proxies: CONNECT tunnels (what
https clients, and ureq for every URL, ask for) and absolute-form requests
(`GET http://host/path`, what apt sends for http URLs). Logs one line per
request to LOGFILE: "CONNECT host:port" or "METHOD URL STATUS", with
" auth=VALUE" appended when the client sent Proxy-Authorization.
"""
import http.client
import os
import http.server
import select
import socket
import sys
import threading
import urllib.parse

portfile, logfile = sys.argv[1:3]
lock = threading.Lock()


def log(line):
    with lock, open(logfile, "a") as f:
        f.write(line + "\n")


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and pipelining, as apt uses them

    def log_message(self, *a):
        pass

    def note(self, line):
        auth = self.headers.get("Proxy-Authorization")
        log(line + (f" auth={auth}" if auth else ""))

    def do_CONNECT(self):
        self.note(f"CONNECT {self.path}")
        host, _, port = self.path.rpartition(":")
        try:
            upstream = socket.create_connection((host.strip("[]"), int(port)))
        except OSError as e:
            self.send_error(502, str(e))
            return
        self.send_response(200, "Connection established")
        self.end_headers()
        conns = [self.connection, upstream]
        while True:
            ready, _, _ = select.select(conns, [], [], 60)
            if not ready:
                break
            for s in ready:
                data = s.recv(65536)
                if not data:
                    upstream.close()
                    return
                (upstream if s is self.connection else self.connection).sendall(data)

    def forward(self):
        url = urllib.parse.urlsplit(self.path)
        if url.scheme != "http" or not url.hostname:
            self.send_error(400, "absolute http URL expected")
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("proxy-authorization", "proxy-connection", "connection", "keep-alive")}
        conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=60)
        try:
            conn.request(self.command, url.path + ("?" + url.query if url.query else ""), body, headers)
            r = conn.getresponse()
            data = r.read()
        except OSError as e:
            self.note(f"{self.command} {self.path} 502")
            self.send_error(502, str(e))
            return
        self.note(f"{self.command} {self.path} {r.status}")
        self.send_response(r.status, r.reason)
        for k, v in r.getheaders():
            if k.lower() not in ("connection", "keep-alive", "transfer-encoding", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_HEAD = do_POST = forward


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
server.daemon_threads = True
with open(portfile + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(portfile + ".tmp", portfile)
server.serve_forever()
