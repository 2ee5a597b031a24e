#!/usr/bin/env python3
"""An HTTP/1.1 relay on 127.0.0.1 that holds remote-protocol requests, so a
test can act at an exact point of a push (t7010-remote-robust.sh).

usage: lib-hold.py PORTFILE UPSTREAM MODE

Binds a free port, writes HOST:PORT to PORTFILE, and relays every connection
to UPSTREAM (HOST:PORT), reading requests by their Content-Length. MODE:

  pack=N        after N bytes of a `POST /v1/pack` body, creates the file
                `held` in the current directory and forwards nothing more of
                that request: the push is mid-stream until one side goes,
                and then the other side's connection is closed.
  update-ref    holds each `POST /v1/update-ref` until a second one is held
                too (at most 60 s), then lets both go: two pushes of one tag
                have both read the tag's old value before either moves it.
  count=FILE    holds nothing; FILE always holds the bytes relayed so far,
                both ways, heads included: what went over the wire
                (bench/remote.sh).
"""
import os
import socket
import sys
import threading

portfile, upstream, mode = sys.argv[1:4]
up_host, up_port = upstream.rsplit(":", 1)
barrier = threading.Barrier(2)
counted = [0]
count_lock = threading.Lock()


def relay(sock, data):
    """Sends data on sock, and counts it in count=FILE mode."""
    sock.sendall(data)
    if mode.startswith("count="):
        with count_lock:
            counted[0] += len(data)
            with open(mode[6:] + ".tmp", "w") as f:
                f.write(f"{counted[0]}\n")
            os.rename(mode[6:] + ".tmp", mode[6:])


def read_head(src, buf):
    """The next request head (bytes) and what followed it, or None at EOF."""
    while b"\r\n\r\n" not in buf:
        data = src.recv(65536)
        if not data:
            return None, b""
        buf += data
    head, rest = buf.split(b"\r\n\r\n", 1)
    return head + b"\r\n\r\n", rest


def length(head):
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return 0


def close(*socks):
    for s in socks:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def requests(client, server):
    buf = b""
    try:
        while True:
            head, buf = read_head(client, buf)
            if head is None:
                break
            line = head.split(b"\r\n", 1)[0]
            if mode == "update-ref" and line.startswith(b"POST /v1/update-ref "):
                try:
                    barrier.wait(timeout=60)
                except threading.BrokenBarrierError:
                    barrier.reset()
            relay(server, head)
            left = length(head)
            hold = None
            if mode.startswith("pack=") and line.startswith(b"POST /v1/pack "):
                hold = int(mode[5:])
            sent = 0
            while left > 0:
                if not buf:
                    buf = client.recv(65536)
                    if not buf:
                        raise EOFError
                chunk, buf = buf[:left], buf[left:]
                if hold is not None and sent + len(chunk) >= hold:
                    server.sendall(chunk[: hold - sent])
                    open("held", "w").close()
                    # Mid-stream: wait for either side to go.
                    while client.recv(65536):
                        pass
                    raise EOFError
                relay(server, chunk)
                sent += len(chunk)
                left -= len(chunk)
    except (OSError, EOFError):
        pass
    close(client, server)


def answers(server, client):
    try:
        while True:
            data = server.recv(65536)
            if not data:
                break
            relay(client, data)
    except OSError:
        pass
    close(client, server)


def main():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    host, port = listener.getsockname()
    with open(portfile + ".tmp", "w") as f:
        f.write(f"{host}:{port}\n")
    os.rename(portfile + ".tmp", portfile)
    while True:
        client, _ = listener.accept()
        try:
            server = socket.create_connection((up_host, int(up_port)))
        except OSError:
            client.close()
            continue
        threading.Thread(target=requests, args=(client, server), daemon=True).start()
        threading.Thread(target=answers, args=(server, client), daemon=True).start()


main()
