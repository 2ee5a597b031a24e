#!/usr/bin/env python3
"""A stand-in desktop notification daemon for t8100: owns
org.freedesktop.Notifications on the bus at ADDRESS (unix:path=...), writes
"owned" to FILE once it does, and reads (and drops) what comes until the bus
goes or it is killed. It answers nothing: karapace-dbus sends Notify
expecting no reply, and the test reads the call off the bus with
dbus-monitor. The D-Bus wire protocol by hand (no python3-dbus needed):
EXTERNAL authentication, then Hello and RequestName."""
import os
import socket
import struct
import sys


def pad(buf, n):
    return buf + b"\0" * (-len(buf) % n)


def string(buf, s):
    buf = pad(buf, 4)
    b = s.encode()
    return buf + struct.pack("<I", len(b)) + b + b"\0"


def signature(buf, s):
    return buf + bytes([len(s)]) + s.encode() + b"\0"


def method_call(serial, dest, path, iface, member, sig="", args=()):
    fields = b""
    for code, kind, value in ((1, "o", path), (2, "s", iface), (3, "s", member), (6, "s", dest)) + (
        ((8, "g", sig),) if sig else ()
    ):
        fields = pad(fields, 8) + bytes([code])
        fields = signature(fields, kind)
        fields = signature(fields, value) if kind == "g" else string(fields, value)
    body = b""
    for kind, value in zip(sig, args):
        body = string(body, value) if kind == "s" else pad(body, 4) + struct.pack("<I", value)
    head = b"l\x01\x00\x01" + struct.pack("<III", len(body), serial, len(fields)) + fields
    return pad(head, 8) + body


def read_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            sys.exit(0)
        buf += chunk
    return buf


def read_message(sock):
    head = read_exact(sock, 16)
    kind = head[1]
    body_len, _, fields_len = struct.unpack("<III", head[4:16])
    rest = read_exact(sock, fields_len + (-(16 + fields_len) % 8) + body_len)
    return kind, rest[len(rest) - body_len :]


address, ready = sys.argv[1], sys.argv[2]
if not address.startswith("unix:path="):
    sys.exit("expected a unix:path= address: " + address)
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.connect(address[len("unix:path=") :].split(",")[0])
sock.sendall(b"\0AUTH EXTERNAL " + str(os.getuid()).encode().hex().encode() + b"\r\n")
if not sock.recv(4096).startswith(b"OK"):
    sys.exit("the bus refused EXTERNAL authentication")
sock.sendall(b"BEGIN\r\n")
bus = ("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus")
sock.sendall(method_call(1, *bus, "Hello"))
sock.sendall(method_call(2, *bus, "RequestName", "su", ("org.freedesktop.Notifications", 4)))
while True:
    kind, body = read_message(sock)
    if kind == 2 and len(body) == 4:  # RequestName's reply (Hello's is a string)
        if struct.unpack("<I", body)[0] != 1:
            sys.exit("org.freedesktop.Notifications is owned already")
        break
with open(ready, "w") as f:
    f.write("owned\n")
while True:
    read_message(sock)
