#!/usr/bin/env python3
"""A static file server on 127.0.0.1 for image tests.

usage: lib-httpd.py ROOT PORTFILE LOGFILE [CERT KEY]

Binds a free port, writes it to PORTFILE, serves ROOT (over TLS with the PEM
certificate chain CERT and key KEY when given), and logs one line per
request ("METHOD PATH STATUS") to LOGFILE. Special paths:
  /html/...          200 text/html page (a captive portal's answer)
  /htmlbody/...      200 application/octet-stream whose body is an HTML page
  /flaky/N/PATH      503 for the first N requests of that URL, then /PATH
  /short/PATH        announces the file's length, sends half and closes
"""
import http.server
import os
import ssl
import sys
import threading

root, portfile, logfile = sys.argv[1:4]
counts = {}
lock = threading.Lock()
PAGE = b"<!DOCTYPE html>\n<html><head><title>Login</title></head><body>Sign in</body></html>\n"


class Handler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *a, **kw):
        super().__init__(*a, directory=root, **kw)

    def log_request(self, code="-", size="-"):
        with lock, open(logfile, "a") as f:
            f.write(f"{self.command} {getattr(self, 'asked', self.path)} {code}\n")

    def page(self, ctype):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def do_GET(self):
        self.asked = self.path
        if self.path.startswith("/html/"):
            return self.page("text/html; charset=utf-8")
        if self.path.startswith("/htmlbody/"):
            return self.page("application/octet-stream")
        if self.path.startswith("/flaky/"):
            _, _, n, rest = self.path.split("/", 3)
            with lock:
                counts[self.path] = counts.get(self.path, 0) + 1
                seen = counts[self.path]
            if seen <= int(n):
                self.send_error(503, "try again")
                return
            self.path = "/" + rest
        if self.path.startswith("/short/"):
            fs_path = os.path.join(root, self.path[len("/short/"):])
            data = open(fs_path, "rb").read()
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        return super().do_GET()


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
if len(sys.argv) > 5:
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(sys.argv[4], sys.argv[5])
    server.socket = tls.wrap_socket(server.socket, server_side=True)
with open(portfile + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(portfile + ".tmp", portfile)
server.serve_forever()
