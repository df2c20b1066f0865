"""A threaded HTTP server on 127.0.0.1 for download tests: serves bytes from memory, honours Range.

``FileServer({"/a.tar": data}, cut_once={"/a.tar"})`` closes the connection
half-way through the first response for ``/a.tar`` (after announcing the full
``Content-Length``), as a dropped connection does.  ``requests`` records
``(path, Range header)`` of every GET.
"""

import http.server
import re
import threading


class FileServer:
    def __init__(self, files, cut_once=(), cut_always=(), ignore_range=False):
        self.files = dict(files)
        self.cut_once = set(cut_once)
        self.cut_always = set(cut_always)
        self.ignore_range = ignore_range
        self.requests = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                range_header = self.headers.get("Range")
                server.requests.append((self.path, range_header))
                data = server.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                start = 0
                match = re.fullmatch(r"bytes=(\d+)-", range_header or "")
                if match and not server.ignore_range:
                    start = int(match.group(1))
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Content-Type", "application/octet-stream")
                cut = self.path in server.cut_always or self.path in server.cut_once
                if cut:
                    server.cut_once.discard(self.path)
                    self.send_header("Connection", "close")
                self.end_headers()
                if cut:
                    self.wfile.write(body[: max(1, len(body) // 2)])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
