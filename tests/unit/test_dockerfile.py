"""The Dockerfile's user: creatable on the Debian base image, and numeric for runAsNonRoot."""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
BASE_PASSWD = Path("/usr/share/base-passwd")

# Debian's base-passwd (/usr/share/base-passwd/{passwd,group}.master): in every Debian image,
# python:*-slim included. useradd refuses a user whose name is taken by a group here
# ("group operator exists"), so `docker build` stops at that RUN.
DEBIAN_USERS = {"root", "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news", "uucp",
                "proxy", "www-data", "backup", "list", "irc", "_apt", "nobody"}
DEBIAN_GROUPS = {"root", "daemon", "bin", "sys", "adm", "tty", "disk", "lp", "mail", "news", "uucp", "man",
                 "proxy", "kmem", "dialout", "fax", "voice", "cdrom", "floppy", "tape", "sudo", "audio", "dip",
                 "www-data", "backup", "operator", "list", "irc", "src", "shadow", "utmp", "video", "sasl",
                 "plugdev", "staff", "games", "users", "nogroup"}


def instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines
            if line and not line.startswith("#")]


def account_commands() -> list[list[str]]:
    """The groupadd/useradd commands of the RUN instructions, as argv lists."""
    commands = []
    for keyword, rest in instructions():
        if keyword == "RUN":
            lexer = shlex.shlex(rest, posix=True, punctuation_chars=True)
            lexer.whitespace_split = True
            argv: list[str] = []
            for token in [*lexer, ";"]:
                if token in ("&&", "||", ";", "|"):
                    if argv and argv[0] in ("useradd", "groupadd", "adduser", "addgroup"):
                        commands.append(argv)
                    argv = []
                else:
                    argv.append(token)
    return commands


def option(argv: list[str], *names: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg in names and i + 1 < len(argv):
            return argv[i + 1]
    return None


def test_the_image_user_is_numeric_and_matches_the_accounts_created() -> None:
    (user,) = [rest for keyword, rest in instructions() if keyword == "USER"]
    uid, _, gid = user.partition(":")
    # runAsNonRoot (manifests/deployment.yaml) can only be checked by the kubelet for a numeric USER.
    assert uid.isdigit() and int(uid) != 0 and (not gid or gid.isdigit()), user
    useradd = [argv for argv in account_commands() if argv[0] == "useradd"]
    assert useradd and option(useradd[0], "--uid", "-u") == uid
    groupadds = [argv for argv in account_commands() if argv[0] == "groupadd"]
    if gid:
        assert option(useradd[0], "--gid", "-g") == gid, "the user's primary group is USER's gid"
        assert any(option(argv, "--gid", "-g") == gid for argv in groupadds), f"no groupadd creates gid {gid}"
    pod_security = yaml.safe_load((ROOT / "manifests" / "deployment.yaml").read_text())["spec"]["template"]["spec"]
    assert pod_security["securityContext"]["runAsNonRoot"] is True


def test_account_names_are_free_on_debian() -> None:
    commands = account_commands()
    assert commands, "the Dockerfile creates its user"
    for argv in commands:
        name = argv[-1]
        if argv[0] == "useradd" and option(argv, "--gid", "-g") is None and "--no-user-group" not in argv:
            # useradd also creates a group of the user's own name (USERGROUPS_ENAB yes).
            assert name not in DEBIAN_GROUPS, f"{' '.join(argv)}: Debian has a group {name!r} already"
        assert name not in (DEBIAN_USERS if argv[0] == "useradd" else DEBIAN_GROUPS), \
            f"{' '.join(argv)}: Debian has {name!r} already"


@pytest.mark.skipif(not (os.geteuid() == 0 and shutil.which("useradd") and shutil.which("groupadd")
                         and (BASE_PASSWD / "group.master").exists() and Path("/etc/login.defs").exists()),
                    reason="needs root, shadow's useradd/groupadd and Debian's base-passwd")
def test_account_commands_succeed_on_debians_base_accounts(tmp_path: Path) -> None:
    """Run them as `docker build` would on a fresh Debian image, in a --prefix sandbox."""
    etc = tmp_path / "etc"
    etc.mkdir()
    for name in ("passwd", "group"):
        (etc / name).write_text((BASE_PASSWD / f"{name}.master").read_text().replace(":*:", ":x:"))
    for name in ("shadow", "gshadow"):
        (etc / name).write_text("")
    shutil.copy("/etc/login.defs", etc / "login.defs")
    for argv in account_commands():
        proc = subprocess.run([argv[0], "--prefix", str(tmp_path), *argv[1:]], capture_output=True, text=True)
        assert proc.returncode == 0, f"{' '.join(argv)}: {proc.stderr.strip()}"
