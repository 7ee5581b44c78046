"""Entry of bemidb.pyz: refuse the wrong Python or platform with a clear message, pick a writable cache, run.

This file plays two parts. build_zipapp.sh copies it to the archive's root as `bemidb_pyz.py`, and the archive's
__main__ calls `start()` BEFORE shiv's bootstrap unpacks the ~300 MB of dependencies: so a wrong Python or CPU
gets a one-line message at once, and an unwritable home gets a cache in the temp folder instead of a crash.
Shiv's bootstrap then calls `main()` from the unpacked copy. Keep it standard-library only and parseable by old
Pythons (no match, no walrus, no `X | Y` at run time): it must get far enough to say it is the wrong version.
"""

import json
import os
import platform
import sys
import tempfile
import zipfile

MIN_PYTHON = (3, 11)
BUILD_FACTS = "bemidb_build.json"  # {"python": "3.11", "machine": "x86_64", "system": "Linux"}, by the build


def _machine(name: str) -> str:
    return {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64"}.get(name.lower(), name.lower())


def build_facts(archive: str) -> dict:
    """What the pyz was built for, read from the archive itself (empty when not run from a pyz)."""
    try:
        loader = globals().get("__loader__")
        if getattr(loader, "archive", None) == archive:  # imported from it: its index is already read
            return json.loads(loader.get_data(BUILD_FACTS).decode())
        with zipfile.ZipFile(archive) as zf:
            return json.loads(zf.read(BUILD_FACTS).decode())
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return {}


def refusal(facts: dict) -> "str | None":
    """Why this interpreter cannot run a pyz built with `facts`, or None."""
    here = (f"this is Python {platform.python_version()} ({sys.executable}) on "
            f"{platform.system()} {platform.machine()}")
    if sys.version_info[:2] < MIN_PYTHON:
        return f"bemidb.pyz needs Python {MIN_PYTHON[0]}.{MIN_PYTHON[1]}+; {here}"
    built = facts.get("python")
    running = f"{sys.version_info[0]}.{sys.version_info[1]}"
    if built and built != running:
        # duckdb and pyarrow inside are compiled for one CPython minor version only
        return (f"this bemidb.pyz was built for Python {built} (its compiled libraries load only there); "
                f"{here}. Run it with python{built}, or rebuild: PYTHON=python{running} ./build_zipapp.sh")
    system, machine = facts.get("system"), facts.get("machine")
    if (system and system != platform.system()) or (machine and _machine(machine) != _machine(platform.machine())):
        return (f"this bemidb.pyz was built for {system} {machine}; {here}. Use the release asset for this "
                f"machine, or rebuild: ./build_zipapp.sh --platform {_machine(platform.machine())}")
    return None


def _writable(path: str) -> bool:
    """The folder, or the nearest existing parent it would be created in, is writable by us."""
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            return False
        path = parent
    return os.path.isdir(path) and os.access(path, os.W_OK | os.X_OK)


def _private_temp_root() -> str:
    """A per-user cache folder in the temp dir: ours (not a symlink, not someone else's) or a fresh one."""
    uid = os.getuid() if hasattr(os, "getuid") else 0
    root = os.path.join(tempfile.gettempdir(), f"bemidb-shiv-{uid}")
    try:
        os.makedirs(root, mode=0o700, exist_ok=True)
        info = os.lstat(root)
        if not os.path.islink(root) and info.st_uid == uid and not info.st_mode & 0o022:
            return root
    except OSError:
        pass
    return tempfile.mkdtemp(prefix="bemidb-shiv-")


def cache_root(environ) -> "str | None":
    """SHIV_ROOT to use when shiv's default (~/.shiv) would fail: HOME unset, unknown or not writable."""
    if environ.get("SHIV_ROOT"):
        return None
    try:
        home_cache = os.path.join(os.path.expanduser("~"), ".shiv")
    except (KeyError, RuntimeError):
        home_cache = ""
    if home_cache.startswith("~") or not os.path.isabs(home_cache) or not _writable(home_cache):
        return _private_temp_root()
    return None


def _site_packages_path(archive: str, facts: dict, environ) -> "str | None":
    """Where shiv unpacks this very build (shiv's own naming: SHIV_ROOT or ~/.shiv, then <archive name>_<build
    id>), or None when shiv's bootstrap decides (SHIV_FORCE_EXTRACT, SHIV_INTERPRETER, ... or no build id)."""
    build_id = facts.get("build_id")
    if not build_id or any(name.startswith("SHIV_") and name != "SHIV_ROOT" for name in environ):
        return None
    root = environ.get("SHIV_ROOT") or os.path.expanduser("~/.shiv")
    name = os.path.basename(os.path.realpath(archive))
    return os.path.join(root, f"{name}_{build_id}", "site-packages")


def unpacked_site_packages(archive: str, facts: dict, environ) -> "str | None":
    """The folder shiv already unpacked this very build to, or None when it must unpack first."""
    path = _site_packages_path(archive, facts, environ)
    return path if path and os.path.isdir(path) else None


def say_first_run(archive: str, facts: dict, environ) -> None:
    """The first run pauses ~10 s while shiv unpacks ~400 MB: say so, so it does not look hung."""
    path = _site_packages_path(archive, facts, environ)
    if path and not os.path.isdir(path):
        sys.stderr.write(f"bemidb: first run of this build: unpacking its dependencies (~400 MB, ~10 s, once) "
                         f"into {os.path.dirname(path)}\n")
        sys.stderr.flush()


def start() -> None:
    """The pyz's __main__: checks, then the unpacked dependencies (shiv's bootstrap unpacks them once)."""
    facts = build_facts(sys.argv[0])
    message = refusal(facts)
    if message:
        sys.stderr.write(message + "\n")
        sys.exit(2)
    root = cache_root(os.environ)
    if root:
        os.environ["SHIV_ROOT"] = root
    site_packages = unpacked_site_packages(sys.argv[0], facts, os.environ)
    if site_packages:
        # Every run after the first: what shiv's bootstrap would do, without it re-reading the 3,000-entry
        # archive index and importing compileall, subprocess and hashlib to find the folder (~40 ms a run).
        import site

        before = len(sys.path)
        site.addsitedir(site_packages)  # and its .pth files, as shiv does
        sys.path[:] = sys.path[before:] + sys.path[:before]
        from bemidb.cli.launch import main as unpacked_main

        sys.exit(unpacked_main())  # (it ends the process itself)
    say_first_run(sys.argv[0], facts, os.environ)
    import _bootstrap  # shiv's, at the archive root

    _bootstrap.bootstrap()


def isolate(archive: str) -> None:
    """Run only what the pyz ships: take the archive itself and the interpreter's own site-packages off
    sys.path. A system numpy would otherwise be loaded by pyarrow (0.1 s, and maybe an ABI it was not built
    against), and every importlib.metadata lookup would re-read the 3,000-entry archive index (0.04 s each)."""
    import site

    system = set(site.getsitepackages()) | {site.getusersitepackages()}
    archive = os.path.abspath(archive)
    sys.path[:] = [p for p in sys.path if p not in system and os.path.abspath(p or ".") != archive]
    # Nothing outside the pyz is visible, so no pydantic plugin can be installed: skip pydantic's search of
    # every package's entry points for one (it runs when pyiceberg's models are built, ~20 ms a run).
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")


def exit_now(code: int) -> None:
    """End the process once bemidb is done: exit handlers run and output is flushed, but the interpreter's
    teardown (freeing ~1,000 modules: pydantic's validators, pyarrow, ...) is skipped: it took 0.2 s of every
    run, a quarter of an incremental sync. By then whatever bemidb wrote is committed and closed."""
    import atexit

    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)
    if run_exit_handlers is not None:
        run_exit_handlers()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said
            pass
    os._exit(code & 0xFF if code >= 0 else 1)


def main() -> int:
    """Called by shiv's bootstrap once the dependencies are on sys.path."""
    if "bemidb_pyz" in sys.modules:  # run from bemidb.pyz (not from a checkout's `python -m bemidb`)
        isolate(sys.argv[0])
    message = refusal({})
    if message:
        sys.stderr.write(message + "\n")
        return 2
    try:
        from bemidb.cli.main import main as cli_main
    except ImportError as exc:  # compiled wheels for another CPU, OS or Python ABI
        sys.stderr.write(f"bemidb.pyz was built for another platform or Python ({exc}); this machine is "
                         f"{platform.system()} {platform.machine()}, Python {platform.python_version()}. "
                         "Rebuild it here with ./build_zipapp.sh\n")
        return 2
    exit_now(cli_main())
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
