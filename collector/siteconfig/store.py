"""The file: atomic saves with a revision check, first-start seeding, reloading on change."""

from __future__ import annotations

import fcntl
import json
import os
import threading
from pathlib import Path

from collector.siteconfig.model import (
    DEFAULT_PROP_KEYS,
    Site,
    SiteConfig,
    SiteConfigConflict,
    SiteConfigError,
    site_key,
)
from collector.siteconfig.parse import from_dict, load, parse, revision_of


def save(config: SiteConfig, path: Path, expected_revision: str | None = None) -> SiteConfig:
    """Write ``config`` atomically (temp file, fsync, rename); returns it as read back, with its revision.

    ``expected_revision``: the revision the edit started from; if the file now holds
    another one (someone else saved meanwhile, or configuration management replaced
    it), nothing is written and :class:`SiteConfigConflict` says so. ``""`` means
    "the file did not exist".
    """
    data = config.to_json().encode()
    checked = from_dict(json.loads(data))  # what would be read back; raises before anything is written
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    # Read-only is enough for flock, so any process that can write the directory can take it,
    # whoever created the lock file (the collector on a first start, the dashboards later).
    lock = os.open(path.with_name(f".{path.name}.lock"), os.O_RDONLY | os.O_CREAT, 0o644)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two dashboards workers saving at once: one after the other
        try:
            if expected_revision is not None:
                current = revision_of(path.read_bytes()) if path.exists() else ""
                if current != expected_revision:
                    raise SiteConfigConflict(f"{path}: changed since it was read (revision {current or 'none'})")
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        finally:
            tmp.unlink(missing_ok=True)  # still under the lock
    finally:
        os.close(lock)
    return SiteConfig(checked.sites, revision_of(data))


DEMO_SITE = "demo.onecloud.example"
DEMO_FILE = Path(__file__).resolve().parent.parent / "data" / "demo-sites.json"


def demo_site() -> Site:
    """The demo site with the privacy policy's goals (order, contact, newsletter, information, job)."""
    site = parse(DEMO_FILE.read_bytes()).site(DEMO_SITE)
    assert site is not None
    return site


def seed_config(sites: tuple[str, ...], custom_events: tuple[str, ...]) -> SiteConfig:
    """The configuration the legacy ``ANALYTICS_SITES`` / ``ANALYTICS_CUSTOM_EVENTS`` described.

    Every listed site accepts those custom events and the keys of :data:`DEFAULT_PROP_KEYS`;
    the demo site also gets its goals and funnels.
    """
    out: list[Site] = []
    for domain in dict.fromkeys(s.strip().lower() for s in sites if s.strip()):
        if site_key(domain) == site_key(DEMO_SITE):
            demo = demo_site()
            events = tuple(dict.fromkeys([*custom_events, *demo.declared_events]))
            out.append(Site(domain, events, demo.declared_prop_keys, demo.goals, demo.funnels))
        else:
            out.append(Site(domain, tuple(custom_events), DEFAULT_PROP_KEYS))
    return from_dict(SiteConfig(tuple(out)).to_dict())


def ensure(path: Path, seed: SiteConfig) -> SiteConfig:
    """The file's configuration; if there is no file yet, ``seed`` is written first (once, race-free)."""
    if not path.exists():
        try:
            save(seed, path, expected_revision="")
        except SiteConfigConflict:
            pass  # another process seeded it first: theirs wins
    return load(path)


def _stamp(path: Path) -> tuple[int, int, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns)


class Watcher:
    """The current configuration of one file, re-read when the file's stat changes.

    ``check()`` is cheap (one ``stat``); callers run it every few seconds. A file
    that does not parse (half-written by hand, a typo) keeps the last good
    configuration in force, and ``last_error`` says why, until it is fixed.
    Without a file, ``fallback`` is in force (the legacy settings' configuration).
    """

    def __init__(self, path: Path, fallback: SiteConfig | None = None) -> None:
        self.path = path
        self.fallback = fallback or SiteConfig(())
        self.last_error: str | None = None
        self._stamp: tuple[int, int, int, int] | None = None
        self.current = self.fallback
        if _stamp(path) is not None:
            self.current = load(path)  # at start, a broken file is an error, not a silent fallback
            self._stamp = _stamp(path)

    def check(self) -> bool:
        """Re-read the file if it changed; True if a new configuration is in force."""
        stamp = _stamp(self.path)
        if stamp == self._stamp:
            return False
        if stamp is None:
            # Removed: keep what is in force (a deploy tool may be replacing it); say so.
            self.last_error = f"{self.path}: missing; the last configuration read stays in force"
            self._stamp = None
            return False
        try:
            config = load(self.path)
        except SiteConfigError as exc:
            self.last_error = str(exc)
            return False  # stamp not taken: the next check tries again
        self._stamp = stamp
        self.last_error = None
        if config == self.current and config.revision == self.current.revision:
            return False
        self.current = config
        return True
