#!/usr/bin/env python3
"""Stand-ins for the two sides of systemd that hpcs-unlock talks to (tests).

  sd-double.py notify SOCKET LOG
      the service manager's notification socket: binds SOCKET (AF_UNIX
      datagrams) and appends each message to LOG as "<ms since epoch> <msg>"
      with newlines in the message shown as '|', until killed.
  sd-double.py ask DIR NAME ID SECONDS OUT
      systemd-cryptsetup asking for a passphrase: DIR/sck.NAME and, by
      rename, DIR/ask.NAME (Id=ID), then waits up to SECONDS for an answer;
      OUT gets the answer's bytes, or nothing; the ask file is removed
      either way, as systemd removes it. Prints "ms-since-epoch" of the
      answer (or "none") on stdout.
"""
import os
import socket
import sys
import time


def now_ms():
    return int(time.time() * 1000)


def notify(path, log):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if os.path.exists(path):
        os.unlink(path)
    s.bind(path)
    with open(log, "a", buffering=1) as f:
        while True:
            msg = s.recv(4096).decode(errors="replace")
            f.write("%d %s\n" % (now_ms(), msg.replace("\n", "|")))


def ask(d, name, ident, seconds, out):
    sck = os.path.join(d, "sck." + name)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(sck)
    tmp = os.path.join(d, "tmp." + name)
    ask_file = os.path.join(d, "ask." + name)
    with open(tmp, "w") as f:
        f.write("[Ask]\nPID=%d\nSocket=%s\nAcceptCached=1\nEcho=0\nNotAfter=0\n"
                "Message=Please enter passphrase for disk %s:\nIcon=drive-harddisk\n"
                "Id=%s\n" % (os.getpid(), sck, name, ident))
    os.rename(tmp, ask_file)
    s.settimeout(float(seconds))
    answer, when = b"", "none"
    try:
        answer = s.recv(4096)
        when = str(now_ms())
    except socket.timeout:
        pass
    finally:
        os.unlink(ask_file)
        os.unlink(sck)
    with open(out, "wb") as f:
        f.write(answer)
    print(when)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "notify":
        notify(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 7 and sys.argv[1] == "ask":
        ask(*sys.argv[2:])
    else:
        sys.exit(__doc__)
