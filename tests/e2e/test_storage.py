"""Storage end to end: the real supabase-py client (storage3) against `supactl up`, through the gateway at
`{api_url}/storage/v1`: buckets, uploads and downloads of equal bytes, listing, public and signed URLs,
move/copy/remove, exists() on a missing object, row-level security between two signed-up users and anon,
and a 50 MB upload streamed without the platform holding it in memory."""

import hashlib
import os
import tempfile
import threading
import time
import uuid

import httpx
import pytest
from storage3.exceptions import StorageApiError
from supabase import create_client

PASSWORD = "correct-horse-1"

POLICIES = """
create policy own_insert on storage.objects for insert to authenticated
  with check (bucket_id = 'private' and (storage.foldername(name))[1] = auth.uid()::text);
create policy own_select on storage.objects for select to authenticated
  using (bucket_id = 'private' and (storage.foldername(name))[1] = auth.uid()::text);
"""


@pytest.fixture(scope="module")
def project(platform):
    return platform.create_project("storage e2e")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


class PeakRss:
    """Samples a process's resident size every 20 ms while the block runs (the kernel's own peak,
    VmHWM, covers the whole life of the session's platform)."""

    def __init__(self, pid):
        self.pid, self.peak, self.done = pid, 0, threading.Event()

    def _run(self):
        while not self.done.is_set():
            self.peak = max(self.peak, rss_kib(self.pid))
            time.sleep(0.02)

    def __enter__(self):
        self.before = rss_kib(self.pid)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join()

    @property
    def growth_mib(self):
        return (self.peak - self.before) / 1024


def test_buckets_objects_and_urls(platform, project):
    sb = create_client(project.url, project.secret)
    st = sb.storage
    st.create_bucket("docs", options={"public": False, "file_size_limit": 1024 * 1024})
    assert [b.id for b in st.list_buckets()] == ["docs"]
    bucket = st.get_bucket("docs")
    assert (bucket.owner, bucket.public, bucket.file_size_limit) == ("", False, 1024 * 1024)
    docs = st.from_("docs")

    payload = os.urandom(4096)
    name = "reports/2026 q4/résumé 日本.bin"
    up = docs.upload(name, payload, {"content-type": "application/octet-stream", "cache-control": "120"})
    assert up.full_path == f"docs/{name}"
    assert docs.download(name) == payload
    with pytest.raises(StorageApiError) as dup:
        docs.upload(name, b"again")
    assert dup.value.status in (409, "409")
    docs.upload(name, b"replaced", {"upsert": "true"})
    assert docs.download(name) == b"replaced"
    docs.update(name, payload)
    assert docs.download(name) == payload

    assert docs.exists(name)
    assert not docs.exists("reports/missing.bin")
    with pytest.raises(StorageApiError) as missing:
        docs.download("reports/missing.bin")
    assert missing.value.code == "not_found"
    info = docs.info(name)
    assert info["size"] == 4096 and info["name"] == name

    for n in ["reports/a.txt", "reports/b.txt", "top.txt"]:
        docs.upload(n, n.encode(), {"content-type": "text/plain"})
    listed = docs.list("reports", {"sortBy": {"column": "name", "order": "asc"}})
    assert [o["name"] for o in listed] == ["2026 q4", "a.txt", "b.txt"]
    assert listed[0]["id"] is None and listed[1]["metadata"]["size"] == len("reports/a.txt")
    assert [o["name"] for o in docs.list("reports", {"search": "b"})] == ["b.txt"]
    assert [o["name"] for o in docs.list("reports", {"limit": 1, "offset": 2})] == ["b.txt"]

    docs.move("reports/a.txt", "archive/a.txt")
    assert not docs.exists("reports/a.txt")
    assert docs.download("archive/a.txt") == b"reports/a.txt"
    docs.copy("archive/a.txt", "archive/a-copy.txt")
    assert docs.download("archive/a-copy.txt") == b"reports/a.txt"
    removed = docs.remove(["archive/a.txt", "archive/a-copy.txt"])
    assert sorted(o["name"] for o in removed) == ["archive/a-copy.txt", "archive/a.txt"]
    assert not docs.exists("archive/a-copy.txt")

    # Signed URLs need no key; a tampered path or an expired token is refused.
    signed = docs.create_signed_url(name, 60)["signedURL"]
    assert httpx.get(signed).content == payload
    bad = signed.replace("r%C3%A9sum%C3%A9", "other")
    assert httpx.get(bad).status_code == 400
    batch = docs.create_signed_urls(["top.txt", "nope.txt"], 60)
    assert httpx.get(batch[0]["signedURL"]).content == b"top.txt"
    assert batch[1]["error"]
    short = docs.create_signed_url("top.txt", 1)["signedURL"]
    time.sleep(2.1)
    expired = httpx.get(short)
    assert expired.status_code == 400 and expired.json()["message"] == "jwt expired"

    # Signed upload URLs.
    up_url = docs.create_signed_upload_url("uploads/via-url.txt")
    docs.upload_to_signed_url("uploads/via-url.txt", up_url["token"], b"signed upload")
    assert docs.download("uploads/via-url.txt") == b"signed upload"

    # Public URLs: only once the bucket is public, then without any key.
    url = docs.get_public_url("top.txt")
    assert httpx.get(url).status_code == 404
    st.update_bucket("docs", {"public": True})
    assert httpx.get(url).content == b"top.txt"
    download = httpx.get(docs.get_public_url("top.txt", {"download": True}))
    assert download.headers["content-disposition"].startswith("attachment")

    # Path traversal is refused, not resolved (storage3 refuses dot segments itself: sent raw here).
    headers = {"apikey": project.secret, "Authorization": f"Bearer {project.secret}"}
    for bad in ["..%2F..%2Foutside.txt", "a/%2E%2E/b.txt", "nul%00.txt"]:
        r = httpx.post(f"{project.url}/storage/v1/object/docs/{bad}", content=b"x", headers=headers)
        assert r.status_code == 400 and r.json()["error"] == "InvalidKey", (bad, r.text)

    # A bucket is deleted only once it is empty.
    with pytest.raises(StorageApiError):
        st.delete_bucket("docs")
    st.empty_bucket("docs")
    st.delete_bucket("docs")
    assert st.list_buckets() == []


def signed_in(project, email):
    client = create_client(project.url, project.anon)
    session = client.auth.sign_up({"email": email, "password": PASSWORD}).session
    assert session is not None
    return client, session.user.id


def test_row_level_security_between_users(platform, project):
    admin = create_client(project.url, project.secret)
    admin.storage.create_bucket("private")
    platform.sql(project, POLICIES)
    suffix = uuid.uuid4().hex[:8]
    ann, ann_id = signed_in(project, f"ann-{suffix}@example.com")
    bob, bob_id = signed_in(project, f"bob-{suffix}@example.com")
    anon = create_client(project.url, project.anon)

    path = f"{ann_id}/diary.txt"
    ann.storage.from_("private").upload(path, b"ann's secret")
    assert ann.storage.from_("private").download(path) == b"ann's secret"
    assert not bob.storage.from_("private").exists(path)
    assert not anon.storage.from_("private").exists(path)
    with pytest.raises(StorageApiError):
        bob.storage.from_("private").download(path)
    assert bob.storage.from_("private").list(ann_id) == []
    with pytest.raises(StorageApiError):
        bob.storage.from_("private").upload(f"{ann_id}/planted.txt", b"x")
    with pytest.raises(StorageApiError):
        anon.storage.from_("private").upload("anon.txt", b"x")
    bob.storage.from_("private").upload(f"{bob_id}/mine.txt", b"bob's")
    assert [o["name"] for o in admin.storage.from_("private").list(bob_id)] == ["mine.txt"]


def test_a_50_mb_upload_is_streamed(platform, project):
    sb = create_client(project.url, project.secret)
    sb.storage.create_bucket("big")
    size = 50 * 1024 * 1024
    with tempfile.NamedTemporaryFile(delete=False) as f:
        chunk = os.urandom(1024 * 1024)
        digest = hashlib.sha256()
        for _ in range(size // len(chunk)):
            f.write(chunk)
            digest.update(chunk)
        path = f.name
    try:
        pid = platform.proc.pid
        with PeakRss(pid) as up:
            sb.storage.from_("big").upload("blob.bin", path, {"content-type": "application/octet-stream"})
        # the resident size during the upload stayed far below the object's size
        assert up.growth_mib < 25, f"RSS {up.before} KiB before, peak {up.peak} KiB"
        # and it is streamed back without being held either
        got = hashlib.sha256()
        url = sb.storage.from_("big").create_signed_url("blob.bin", 60)["signedURL"]
        with PeakRss(pid) as down:
            with httpx.stream("GET", url, timeout=120) as r:
                assert r.status_code == 200 and int(r.headers["content-length"]) == size
                for part in r.iter_bytes():
                    got.update(part)
        assert got.hexdigest() == digest.hexdigest()
        assert down.growth_mib < 25, f"RSS {down.before} KiB before, peak {down.peak} KiB"
    finally:
        os.remove(path)
