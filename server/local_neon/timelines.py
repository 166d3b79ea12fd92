"""Timeline directories: one copy of a branch's data, with what it takes to go back in time on it.

A timeline lives in ``<clusters root>/tl-<hex>/`` and holds ``data/`` (the PostgreSQL data directory an endpoint runs
on), ``bases/`` (consistent copies as tar files: one taken when the timeline was made, later ones added as it ages)
and ``wal/`` (every WAL segment the server has completed, copied there by ``archive_command``). A base plus the WAL
after it can rebuild the data as it was at any later moment: that is point-in-time branching and restore. ``prune``
drops the bases and WAL that only serve moments older than the history window. Bases are tar files because writing
one file is several times faster than writing the thousand small files of a data directory. Everything here is
blocking (subprocesses and file copies, run as the server's user) and meant for a worker thread; failures are
``ClusterError``.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import tarfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ..errors import ClusterError
from .clusters import Cluster, run_as_server_user, run_as_user

__all__ = ["SERVER_SETTINGS", "Base", "Timeline"]

SERVER_SETTINGS = {
    "archive_mode": "on",
    # The archiver runs in the data directory, so a relative path keeps working when a timeline directory moves.
    "archive_command": "cp %p ../wal/%f.part && mv ../wal/%f.part ../wal/%f",
    "log_min_messages": "warning",
    "log_checkpoints": "off",
    "include_if_exists": "neon_recovery.conf",
}
_RECOVERY_CONF = "neon_recovery.conf"
_NAME = re.compile(r"tl-[0-9a-f]{32}")
_BASE_NAME = re.compile(r"b-(\d{20})-([0-9A-F]{16})")
_SEGMENT = re.compile(r"[0-9A-F]{24}")
# 1 MB WAL segments (initdb's default is 16 MB): branch copies carry a segment or two, the archive grows in small
# steps, and point-in-time recovery reads less.
_INITDB_OPTIONS = ("--wal-segsize=1",)


def _conf_value(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def _as_server_user(*command: str | Path, what: str) -> None:
    run_as_server_user(command, timeout=3600, what=what)


def _write_owned(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    if user := run_as_user():
        os.chown(path, *user)


def _lsn_value(lsn: str) -> int:
    high, low = lsn.split("/")
    return (int(high, 16) << 32) | int(low, 16)


@dataclass(frozen=True)
class Base:
    """A consistent copy of a timeline's data, good for moments from ``time`` (and LSNs from ``lsn``) on."""

    path: Path
    time: datetime
    lsn: str

    @property
    def lsn_value(self) -> int:
        return _lsn_value(self.lsn)

    @classmethod
    def parse(cls, path: Path) -> Base | None:
        match = _BASE_NAME.fullmatch(path.name)
        if match is None:
            return None
        micros, lsn = int(match.group(1)), int(match.group(2), 16)
        moment = datetime.fromtimestamp(micros / 1_000_000, UTC)
        return cls(path, moment, f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}")

    @staticmethod
    def name_for(moment: datetime, lsn: str) -> str:
        return f"b-{int(moment.timestamp() * 1_000_000):020d}-{_lsn_value(lsn):016X}"

    @property
    def start_segment(self) -> str:
        """The first WAL segment a recovery from this base reads."""
        return (self.path / "start_segment").read_text(encoding="utf-8").strip()

    def extract(self, target: Path) -> None:
        """Unpack the base into the new data directory ``target`` (owned by the server's user, mode 0700)."""
        _as_server_user("mkdir", "-m", "700", target, what=f"creating {target}")
        _as_server_user("tar", "-xf", self.path / "base.tar", "-C", target, what=f"unpacking {self.path}")
        if (self.path / "pg_wal.tar").exists():
            _as_server_user("tar", "-xf", self.path / "pg_wal.tar", "-C", target / "pg_wal", what="unpacking WAL")
        (target / "server.log").unlink(missing_ok=True)  # the log of the server the copy was taken from


@dataclass(frozen=True)
class Timeline:
    """The timeline directory ``path``; constructing one touches nothing on disk."""

    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def data(self) -> Path:
        return self.path / "data"

    @property
    def bases_dir(self) -> Path:
        return self.path / "bases"

    @property
    def wal(self) -> Path:
        return self.path / "wal"

    @staticmethod
    def is_timeline_name(name: str) -> bool:
        """Whether ``name`` is a directory name this module creates (only those are ever swept away)."""
        return _NAME.fullmatch(name) is not None

    def cluster(self, *, bindir: Path | None, host: str, port: int | None, superuser: str, password: str) -> Cluster:
        """The ``Cluster`` on this timeline's data directory."""
        return Cluster(self.data, bindir=bindir, host=host, port=port, superuser=superuser, password=password)

    def create(self) -> None:
        """Make the empty directory (with ``wal/`` and ``bases/``), owned by the server's user; raises if it exists."""
        try:
            for directory in (self.path, self.wal, self.bases_dir):
                directory.mkdir(mode=0o700)
                if user := run_as_user():
                    os.chown(directory, *user)
        except OSError as exc:
            raise ClusterError(f"Cannot create the timeline directory {self.path}: {exc}") from exc

    def remove(self, bindir: Path | None) -> None:
        """Stop any server still running on the data directory (immediate mode) and delete the whole directory."""
        if (self.data / "postmaster.pid").exists():
            Cluster(self.data, bindir=bindir).stop(mode="immediate")
        shutil.rmtree(self.path, ignore_errors=True)

    def bases(self) -> list[Base]:
        """The timeline's bases, oldest first."""
        found = [Base.parse(path) for path in self.bases_dir.iterdir()] if self.bases_dir.exists() else []
        return sorted((base for base in found if base is not None), key=lambda base: base.time)

    def init_root(self, cluster: Cluster) -> Base:
        """initdb a new cluster into ``data`` (``cluster`` must be on it) and keep a cold copy as the first base."""
        cluster.init(settings=SERVER_SETTINGS, initdb_options=_INITDB_OPTIONS)
        fresh = self._fresh()
        _as_server_user("tar", "-cf", fresh / "base.tar", "-C", self.data, ".", what=f"archiving {self.data}")
        segment = self._control(cluster.bindir, self.data, "Latest checkpoint's REDO WAL file")
        return self._keep(fresh, self._control(cluster.bindir, self.data, "Latest checkpoint location"), segment)

    def copy_from(self, source: Cluster) -> Base:
        """Copy the running ``source`` (``pg_basebackup``) into a first base and into ``data``."""
        base = self.add_base(source)
        base.extract(self.data)
        return base

    def add_base(self, cluster: Cluster) -> Base:
        """Add a base: a ``pg_basebackup`` of the running ``cluster`` (its own server, or the source of a copy)."""
        fresh = self._fresh()
        lsn = cluster.basebackup(fresh, tar=True)
        with tarfile.open(fresh / "base.tar") as archive:
            member = archive.extractfile("backup_label")
            label = member.read().decode() if member is not None else ""
        match = re.search(r"^START WAL LOCATION: \S+ \(file ([0-9A-F]{24})\)$", label, re.MULTILINE)
        if match is None:
            raise ClusterError(f"The backup in {fresh} has no backup label naming its first WAL segment.")
        return self._keep(fresh, lsn, match.group(1))

    def prepare_recovery(self, source: Timeline, *, target_time: datetime | None, target_lsn: str | None) -> None:
        """Make ``data`` a copy of ``source``'s latest base before the target, set to replay ``source``'s WAL up to
        the target and promote. Starting a server on ``data`` performs the recovery; ``finish_recovery`` tidies up.
        """
        usable = [
            base
            for base in source.bases()
            if (target_time is None or base.time <= target_time)
            and (target_lsn is None or base.lsn_value <= _lsn_value(target_lsn))
        ]
        if not usable:
            raise ClusterError(f"{source.path} has no base copy older than the target; it is outside the history.")
        usable[-1].extract(self.data)
        restore = f"cp {shlex.quote(str(source.wal))}/%f %p 2>/dev/null"
        lines = [f"restore_command = {_conf_value(restore)}", "recovery_target_action = 'promote'"]
        lines.append("recovery_target_timeline = 'latest'")
        if target_time is not None:
            lines.append(f"recovery_target_time = {_conf_value(target_time.isoformat())}")
        if target_lsn is not None:
            lines.append(f"recovery_target_lsn = {_conf_value(target_lsn)}")
        _write_owned(self.data / _RECOVERY_CONF, "\n".join(lines) + "\n")
        _write_owned(self.data / "recovery.signal", "")

    @staticmethod
    def anchor(bases: list[Base], before: datetime) -> Base | None:
        """The newest of ``bases`` taken at or before ``before``: the oldest one history from ``before`` needs."""
        return next((base for base in reversed(bases) if base.time <= before), None)

    def prune(self, before: datetime, bindir: Path) -> Base | None:
        """Drop the bases older than the newest one taken at or before ``before``, and the WAL only they needed.

        Afterwards every moment from ``before`` on can still be recovered. Returns the oldest base kept.
        """
        bases = self.bases()
        anchor = self.anchor(bases, before)
        if anchor is None:
            return bases[0] if bases else None
        for base in bases:
            if base.time < anchor.time:
                shutil.rmtree(base.path, ignore_errors=True)
        run_as_server_user([bindir / "pg_archivecleanup", self.wal, anchor.start_segment], what="pg_archivecleanup")
        return anchor

    def wrote_since(self, base: Base) -> bool:
        """Whether WAL segments later than the one holding ``base``'s LSN have been archived (the data changed)."""
        segments = [path for path in self.wal.iterdir() if _SEGMENT.fullmatch(path.name)]
        if not segments:
            return False
        size = segments[0].stat().st_size  # every segment of a cluster has its WAL segment size
        number, per_id = base.lsn_value // size, 0x100000000 // size
        done = f"{number // per_id:08X}{number % per_id:08X}"
        return any(path.name[8:] > done for path in segments)

    def finish_recovery(self) -> str:
        """After promotion: drop the recovery settings; returns the LSN where the new timeline left the old one."""
        (self.data / _RECOVERY_CONF).unlink(missing_ok=True)
        histories = sorted((self.data / "pg_wal").glob("*.history"))
        if not histories:
            raise ClusterError(f"No timeline history in {self.data / 'pg_wal'}: the recovery did not promote.")
        last = [line for line in histories[-1].read_text().splitlines() if line.strip()][-1]
        return last.split()[1]

    def _fresh(self) -> Path:
        """An empty ``bases/new`` for a base in the making (a leftover of an interrupted one is discarded)."""
        fresh = self.bases_dir / "new"
        shutil.rmtree(fresh, ignore_errors=True)
        fresh.mkdir(mode=0o700)
        if user := run_as_user():
            os.chown(fresh, *user)
        return fresh

    def _keep(self, fresh: Path, lsn: str, start_segment: str) -> Base:
        """Name the finished base ``fresh`` (its time: now, when it is complete) and note its first WAL segment."""
        (fresh / "start_segment").write_text(start_segment + "\n", encoding="utf-8")
        moment = datetime.now(UTC)
        target = self.bases_dir / Base.name_for(moment, lsn)
        fresh.rename(target)
        return Base(target, moment, lsn)

    @staticmethod
    def _control(bindir: Path, datadir: Path, field: str) -> str:
        out = run_as_server_user([bindir / "pg_controldata", "-D", datadir], what="pg_controldata").stdout
        match = re.search(rf"^{re.escape(field)}:\s+(\S+)$", out, re.MULTILINE)
        if match is None:
            raise ClusterError(f"Cannot read {field!r} of {datadir} from pg_controldata.")
        return match.group(1)
