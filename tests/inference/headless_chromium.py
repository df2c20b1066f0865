"""Headless Chromium for the results-page tests: find (or install) it, load a page, read results, screenshot.

Pages are checked without a browser driver: a copy of the page gets a small inline script that, once the
window has loaded, writes what it measured (each image's natural width, the table rows) into the DOM as JSON,
and ``chromium --dump-dom`` prints that DOM.  ``--screenshot`` writes a PNG for the developer.
"""

import json
import os
import re
import shutil
import subprocess
import tempfile

# As /work/.library/env/machines/python.md: no sandbox as root, no GPU, no background connections (the
# machine's network is closed and refused connections slow Chromium down).
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--allow-file-access-from-files")

CHECK_SCRIPT = """<script>
window.addEventListener("load", function () {
  var images = Array.prototype.map.call(document.images, function (img) {
    return {src: img.getAttribute("src"), naturalWidth: img.naturalWidth, complete: img.complete};
  });
  var rows = Array.prototype.map.call(document.querySelectorAll("table.summary tr.row"), function (tr) {
    return tr.cells[0].textContent;
  });
  var out = document.createElement("pre");
  out.id = "page-check";
  out.textContent = JSON.stringify({images: images, summary_rows: rows});
  document.body.appendChild(out);
});
</script>"""


def find_chromium(install=True):
    """The Chromium executable, installing Debian's ``chromium`` with apt-get when missing (as root).

    Returns ``(path, None)`` or ``(None, reason)`` naming why there is none.
    """
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path, None
    if not install:
        return None, "chromium is not installed"
    if not shutil.which("apt-get"):
        return None, "chromium is not installed and there is no apt-get to install it"
    if os.geteuid() != 0:
        return None, "chromium is not installed and installing it with apt-get needs root"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1200)
        if result.returncode != 0:
            return None, f"chromium could not be installed ({' '.join(command)}: {result.stderr.strip()[-300:]})"
    path = shutil.which("chromium")
    return (path, None) if path else (None, "apt-get installed chromium but there is no chromium command")


def _run(chromium, *args, timeout=120):
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        return subprocess.run([chromium, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                              text=True, timeout=timeout)


def check_page(chromium, page_path):
    """Load ``page_path`` (a file) and return ``{"images": [...], "summary_rows": [...]}`` as the browser saw it."""
    with open(page_path) as f:
        text = f.read()
    probe = os.path.join(os.path.dirname(page_path), "_page_check.html")  # same directory: the same relative links
    with open(probe, "w") as f:
        f.write(text.replace("</body>", CHECK_SCRIPT + "</body>"))
    try:
        result = _run(chromium, "--virtual-time-budget=10000", "--dump-dom", "file://" + os.path.abspath(probe))
    finally:
        os.remove(probe)
    match = re.search(r'<pre id="page-check">(.*?)</pre>', result.stdout, re.S)
    if not match:
        raise AssertionError(f"chromium gave no page check (exit {result.returncode}): {result.stderr[-2000:]}")
    import html

    return json.loads(html.unescape(match.group(1)))


def screenshot(chromium, page_path, png_path, width=1400, height=1800):
    """Write a PNG of ``page_path`` as the browser renders it; returns ``png_path``."""
    result = _run(chromium, f"--screenshot={os.path.abspath(png_path)}", f"--window-size={width},{height}",
                  "--hide-scrollbars", "--virtual-time-budget=10000", "file://" + os.path.abspath(page_path))
    if not os.path.exists(png_path):
        raise AssertionError(f"chromium wrote no screenshot (exit {result.returncode}): {result.stderr[-2000:]}")
    return png_path
