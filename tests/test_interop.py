"""Interoperability with the tools users already run, each tested with the real program.

- optuna-dashboard (the pip package) serving a skipsearch study: its JSON API shows the
  study, its trials, the objective names and the trials' user attributes;
- a real PostgreSQL server (Debian's package, started here in a temporary folder) as the
  study's storage: run, resume, `skipsearch results` and `skipsearch dashboard`;
- a PostgreSQL URL that cannot connect: one line, exit 2, nothing written (fast).

The slow tests skip, saying why, where optuna-dashboard, PostgreSQL's initdb/pg_ctl or
psycopg2 are not installed (`pip install skipsearch[interop]`; `apt-get install postgresql`).
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import optuna
import pytest
from test_search import write_study

from skipsearch.cli import main
from skipsearch.results import load_results
from skipsearch.search.config import load_study
from skipsearch.search.opening import open_study

OBJECTIVES = ["dice", "skip_memory_bytes"]  # the defaults of task shapes


def free_port() -> int:
    """A localhost TCP port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# -- metric names ---------------------------------------------------------------------------
def test_new_study_stores_the_objective_names(tmp_path):
    cfg = load_study(write_study(tmp_path))
    assert open_study(cfg).metric_names == OBJECTIVES
    assert optuna.load_study(study_name="t", storage=cfg.storage).metric_names == OBJECTIVES


def test_study_made_without_names_gets_them_when_opened_again(tmp_path):
    cfg = load_study(write_study(tmp_path))
    cfg.out.mkdir(parents=True)
    optuna.create_study(study_name="t", storage=cfg.storage, directions=["maximize", "minimize"])
    assert optuna.load_study(study_name="t", storage=cfg.storage).metric_names is None
    open_study(cfg)
    assert optuna.load_study(study_name="t", storage=cfg.storage).metric_names == OBJECTIVES


# -- optuna-dashboard ---------------------------------------------------------------------------
def _dashboard_program() -> str:
    pytest.importorskip("optuna_dashboard", reason="optuna-dashboard is not installed (pip install skipsearch[interop])")
    beside = Path(sys.executable).parent / "optuna-dashboard"  # the venv's, when its bin is not on PATH
    found = str(beside) if beside.is_file() else shutil.which("optuna-dashboard")
    if found is None:
        pytest.skip("the optuna-dashboard program is not found beside python or on PATH")
    return found


def _get_json(url: str):
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read().decode("utf-8"))


@contextlib.contextmanager
def optuna_dashboard(storage: str, log: Path):
    """The real optuna-dashboard on `storage`, on a free localhost port; yields a function
    that GETs a path of its JSON API. The process is stopped (by its pid) on the way out."""
    program, port = _dashboard_program(), free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [program, storage, "--host", "127.0.0.1", "--port", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        base, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"optuna-dashboard exited with {proc.returncode}: {log.read_text(errors='replace')[-3000:]}")
            try:
                _get_json(f"{base}/api/meta")
                break
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    pytest.fail(f"optuna-dashboard did not answer in 90 s: {log.read_text(errors='replace')[-3000:]}")
                time.sleep(0.25)
        yield lambda path: _get_json(base + path)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=15)


def check_dashboard_api(api, storage: str, name: str) -> dict:
    """What optuna-dashboard's API shows of study `name` agrees with Optuna's own view."""
    study = optuna.load_study(study_name=name, storage=storage)
    (summary,) = [s for s in api("/api/studies")["study_summaries"] if s["study_name"] == name]
    assert summary["directions"] == ["maximize", "minimize"]
    assert {a["key"] for a in summary["user_attrs"]} >= {"identity", "config"}
    detail = api(f"/api/studies/{summary['study_id']}")
    assert detail["name"] == name
    assert detail["objective_names"] == OBJECTIVES
    assert len(detail["trials"]) == len(study.trials) > 0
    ours = {t.number: t for t in study.trials}
    for t in detail["trials"]:
        ref, attrs = ours[t["number"]], {a["key"]: a["value"] for a in t["user_attrs"]}
        assert t["state"].upper() == ref.state.name
        assert attrs["arch_id"] == ref.user_attrs["arch_id"]
        assert float(attrs["skip_memory_bytes"]) == ref.user_attrs["skip_memory_bytes"]
        assert json.loads(attrs["spec"]) == json.loads(ref.user_attrs["spec"])
        if ref.state.name == "COMPLETE":
            assert t["values"] == ref.values
    assert any(t["state"] == "Complete" for t in detail["trials"])
    return detail


@pytest.mark.slow
def test_optuna_dashboard_reads_a_skipsearch_study(tmp_path, capsys):
    _dashboard_program()  # skip before training anything
    path = write_study(tmp_path, n_trials=4, seed_presets="[tiny-naf]")
    assert main(["run", str(path), "--backend", "local"]) == 0
    capsys.readouterr()
    db = tmp_path / "t" / "study.db"
    storage = f"sqlite:///{db}"
    with optuna_dashboard(storage, tmp_path / "optuna-dashboard.log") as api:
        detail = check_dashboard_api(api, storage, "t")
    # the front optuna-dashboard draws is skipsearch's own
    front = sorted(int(n) for n in load_results(tmp_path / "t").front["number"])
    assert sorted(t["number"] for t in detail["best_trials"]) == front


# -- PostgreSQL -------------------------------------------------------------------------------
def _pg_programs() -> Path:
    """The folder holding initdb and pg_ctl: on PATH, or Debian's /usr/lib/postgresql/<ver>/bin."""
    found = [shutil.which("initdb"), shutil.which("pg_ctl")]
    if all(found):
        return Path(found[0]).parent
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: [int(x) for x in re.findall(r"\d+", p.parent.name)]
    )
    for folder in reversed(versions):
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    pytest.skip(
        "PostgreSQL's initdb and pg_ctl are not found (on PATH or /usr/lib/postgresql/<ver>/bin): apt-get install postgresql"
    )


@contextlib.contextmanager
def postgres_server():
    """A throwaway PostgreSQL server on a free localhost port, with superuser `skip`
    (password auth) and an empty database `skipsearch`; stopped and removed afterwards.
    initdb refuses to run as root, so as root the server runs as `nobody`."""
    pytest.importorskip("psycopg2", reason="psycopg2 is not installed (pip install skipsearch[interop])")
    import psycopg2

    bin_dir = _pg_programs()
    prefix: list[str] = []
    owner = None
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        try:
            owner = pwd.getpwnam("nobody")
        except KeyError:
            owner = None
        if runuser is None or owner is None:
            pytest.skip("running as root, and runuser or the user nobody is missing: initdb refuses root")
        prefix = [runuser, "-u", "nobody", "--"]
    home = Path(tempfile.mkdtemp(prefix="skipsearch-pg-"))  # not under tmp_path: pytest makes that root-only
    data, sock, password = home / "data", home / "sock", "s3cret-pg"
    sock.mkdir()
    (home / "pw").write_text(password + "\n")
    if owner is not None:
        for p in (home, sock, home / "pw"):
            os.chown(p, owner.pw_uid, owner.pw_gid)
    started = False

    def pg(*args: str) -> subprocess.CompletedProcess:
        run = subprocess.run  # cwd: a folder the server's user can enter
        return run([*prefix, *args], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, cwd=home)

    try:
        r = pg(
            str(bin_dir / "initdb"),
            *("-D", str(data), "-U", "skip", "--auth=scram-sha-256", f"--pwfile={home / 'pw'}"),
            *("--locale=C", "--encoding=UTF8", "--no-sync"),
        )
        if r.returncode:
            pytest.fail(f"initdb failed ({r.returncode}): {r.stderr[-2000:]}")
        port = free_port()
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {sock} -c fsync=off"
        r = pg(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(home / "server.log"), "-w", "-t", "60", "-o", options, "start")
        started = True  # even a failed start may have left a postmaster: stopped below
        if r.returncode:
            log = (home / "server.log").read_text(errors="replace") if (home / "server.log").exists() else ""
            pytest.fail(f"pg_ctl start failed ({r.returncode}): {r.stderr[-1000:]} {log[-2000:]}")
        con = psycopg2.connect(host="127.0.0.1", port=port, user="skip", password=password, dbname="postgres")
        try:
            con.autocommit = True
            with con.cursor() as cur:
                cur.execute("CREATE DATABASE skipsearch")
                cur.execute("SHOW server_version")
                (version,) = cur.fetchone()
        finally:
            con.close()
        yield {"port": port, "password": password, "version": version}
    finally:
        if started:
            pg(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t", "60", "stop")
            pid_file = data / "postmaster.pid"
            if pid_file.exists():  # pg_ctl could not stop it: the postmaster, by its pid
                with contextlib.suppress(ValueError, ProcessLookupError, OSError):
                    os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
        shutil.rmtree(home, ignore_errors=True)


def _trained(folder: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in (folder / "trials").rglob("*") if p.is_file()}


@pytest.mark.slow
def test_postgresql_storage_runs_resumes_and_renders(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("PGPASSWORD", raising=False)
    with postgres_server() as pg:
        port, password = pg["port"], pg["password"]
        print(f"PostgreSQL {pg['version']} on 127.0.0.1:{port}", file=sys.__stderr__)
        url = f"postgresql+psycopg2://skip:{password}@127.0.0.1:{port}/skipsearch"

        # a wrong password: one line naming the server, nothing written
        bad = write_study(tmp_path / "bad", storage=url.replace(password, "wrong-one"))
        assert main(["run", str(bad), "--backend", "local"]) == 2
        line = one_line(capsys.readouterr().err)
        assert f"127.0.0.1:{port}" in line and "password authentication failed" in line and "wrong-one" not in line
        assert sorted(p.name for p in (tmp_path / "bad").iterdir()) == ["study.yaml"]

        path = write_study(tmp_path / "pg", n_trials=3, seed_presets="[tiny-naf]", storage=url)
        out = tmp_path / "pg" / "t"
        assert main(["run", str(path), "--backend", "local"]) == 0
        study = optuna.load_study(study_name="t", storage=url)
        assert len(study.trials) == 3 and study.metric_names == OBJECTIVES
        assert not (out / "study.db").exists()
        first = {t.number: (t.state, t.values, t.datetime_complete, t.user_attrs.get("train_time_s")) for t in study.trials}
        weights = _trained(out)
        assert weights  # the trained trials' files

        # resumed with a larger total: more trials, none of the earlier ones trained again
        assert main(["run", str(path), "--backend", "local", "--trials", "5"]) == 0
        study = optuna.load_study(study_name="t", storage=url)
        assert len(study.trials) == 5
        again = {t.number: (t.state, t.values, t.datetime_complete, t.user_attrs.get("train_time_s")) for t in study.trials}
        assert {n: again[n] for n in first} == first
        assert {p: m for p, m in _trained(out).items() if p in weights} == weights
        assert "resumed" not in capsys.readouterr().err  # nothing was left running to recover

        # results and the dashboard find the study through the folder's note of its URL
        note = (out / "storage.url").read_text()
        assert f"postgresql+psycopg2://skip@127.0.0.1:{port}/skipsearch" in note and password not in note
        assert main(["results", str(out), "--format", "json"]) == 2  # no password anywhere
        line = one_line(capsys.readouterr().err)
        assert "storage.url" in line and f"127.0.0.1:{port}" in line and "PGPASSWORD" in line

        monkeypatch.setenv("PGPASSWORD", password)  # how libpq is given the password
        assert main(["results", str(out), "--format", "json", "--study", "t"]) == 0
        rows = json.loads(capsys.readouterr().out)
        assert sorted(r["number"] for r in rows) == [0, 1, 2, 3, 4]
        by_number = {t.number: t for t in study.trials}
        for r in rows:
            t = by_number[r["number"]]
            assert r["state"] == t.state.name and r["arch_id"] == t.user_attrs["arch_id"]
            if t.state.name == "COMPLETE":
                assert [r["dice"], r["skip_memory_bytes"]] == pytest.approx(t.values, rel=1e-9)  # JSON keeps 10 digits
        assert any(r["pareto"] for r in rows)
        frame = load_results(out).frame.set_index("number")  # read from PostgreSQL: the values to the bit
        for t in study.trials:
            if t.state.name == "COMPLETE":
                assert frame.loc[t.number, OBJECTIVES].tolist() == t.values
        assert main(["results", str(out), "--study", "nope"]) == 2
        assert "has no study 'nope'; allowed: t" in one_line(capsys.readouterr().err)

        assert main(["dashboard", str(out)]) == 0
        page = (out / "dashboard.html").read_text(encoding="utf-8")
        front = load_results(out).front
        assert len(front) and all(a in page for a in front["arch_id"])  # the front's architectures are on the page
        capsys.readouterr()

        # and optuna-dashboard serves the same study from PostgreSQL
        if _has_optuna_dashboard():
            with optuna_dashboard(url, tmp_path / "optuna-dashboard.log") as api:
                check_dashboard_api(api, url, "t")


def _has_optuna_dashboard() -> bool:
    try:
        _dashboard_program()
    except pytest.skip.Exception:
        return False
    return True


# -- a server that cannot be reached ----------------------------------------------------------
@pytest.mark.parametrize(
    "where, reason",
    [("127.0.0.1:{port}", "Connection refused"), ("nohost.invalid", "could not translate host name")],
    ids=["nothing-listening", "unknown-host"],
)
def test_unreachable_postgresql_is_one_line_before_anything_is_written(tmp_path, capsys, where, reason):
    pytest.importorskip("psycopg2", reason="psycopg2 is not installed (pip install skipsearch[interop])")
    host = where.format(port=free_port())
    path = write_study(tmp_path, storage=f"postgresql+psycopg2://skip:s3cret-pg@{host}/skipsearch")
    assert main(["run", str(path), "--backend", "local"]) == 2
    line = one_line(capsys.readouterr().err)
    shown = host if ":" in host else f"{host}:5432"
    assert f"{path}: storage: 'postgresql+psycopg2://skip:***@{host}/skipsearch': cannot connect to {shown} (" in line
    assert reason in line and "s3cret-pg" not in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study.yaml"]  # no out folder, no study.db


def test_postgresql_url_without_its_driver_names_the_one_to_write(tmp_path, capsys):
    from sqlalchemy.engine import make_url

    dialect = make_url("postgresql://h/db").get_dialect()
    try:
        dialect.import_dbapi()
    except ImportError:
        pass
    else:
        pytest.skip(f"the default PostgreSQL driver here ({dialect.driver}) is installed")
    path = write_study(tmp_path, storage="postgresql://skip:s3cret-pg@127.0.0.1/skipsearch")
    assert main(["run", str(path), "--backend", "local"]) == 2
    line = one_line(capsys.readouterr().err)
    assert f"postgresql:// means postgresql+{dialect.driver}://" in line and "postgresql+psycopg2://" in line
    assert "s3cret-pg" not in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study.yaml"]


def test_study_kept_elsewhere_is_found_from_its_folder(tmp_path, capsys):
    elsewhere = tmp_path / "db" / "kept.db"
    elsewhere.parent.mkdir()
    cfg = load_study(write_study(tmp_path, storage=f"sqlite:///{elsewhere}"))
    open_study(cfg)  # created, no trial yet
    assert (cfg.out / "storage.url").read_text().splitlines()[-1] == f"sqlite:///{elsewhere.resolve()}"
    assert not (cfg.out / "study.db").exists()
    assert main(["results", str(cfg.out), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    cfg = load_study(write_study(tmp_path))  # the folder's own study.db again: the note goes
    open_study(cfg)
    assert not (cfg.out / "storage.url").exists() and (cfg.out / "study.db").exists()
