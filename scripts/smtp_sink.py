#!/usr/bin/env python3
"""A minimal SMTP server that accepts every message and counts them (scripts/scale).

    smtp_sink.py PORT COUNT_FILE      (the count is rewritten after every message)
"""
import socketserver
import sys
import threading

port, count_file = int(sys.argv[1]), sys.argv[2]
lock = threading.Lock()
count = 0


class Session(socketserver.StreamRequestHandler):
    def handle(self):
        global count
        self.wfile.write(b"220 sink ESMTP\r\n")
        while True:
            line = self.rfile.readline()
            if not line:
                return
            cmd = line[:4].upper()
            if cmd in (b"EHLO", b"HELO"):
                self.wfile.write(b"250-sink\r\n250 8BITMIME\r\n")
            elif cmd == b"DATA":
                self.wfile.write(b"354 go ahead\r\n")
                while True:
                    data = self.rfile.readline()
                    if not data or data == b".\r\n":
                        break
                with lock:
                    count += 1
                    with open(count_file, "w") as f:
                        f.write(str(count))
                self.wfile.write(b"250 OK\r\n")
            elif cmd == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 OK\r\n")


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


Server(("127.0.0.1", port), Session).serve_forever()
