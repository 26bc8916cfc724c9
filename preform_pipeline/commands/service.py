"""``preform-pipeline service install|uninstall SETTINGS`` and ``service status``: the hot
folder as a service.

``install`` writes the service definition for this machine's service manager and, once the
user confirms (or with ``--yes``), registers and starts it; ``--dry-run`` only shows what it
would write and run. ``uninstall`` stops and removes it; ``status`` asks the manager about it
(by the service's name: it needs no settings).

Methods (``--method``; the default follows the platform):

``systemd``
    Linux. A unit file; ``--scope system`` (the default as root: ``/etc/systemd/system``,
    ``User=`` the account named by ``--user``) or ``--scope user`` (``~/.config/systemd/user``).
``launchd``
    macOS. A launch agent property list in ``~/Library/LaunchAgents``.
``nssm``
    Windows, as a real service through NSSM: a ``.cmd`` script of ``nssm`` commands is
    written next to the settings and run.
``schtasks``
    Windows without extra tools: a Task Scheduler XML definition (start at boot, restart on
    failure, no time limit) next to the settings, registered with ``schtasks /Create /XML``.

Every definition runs ``preform-pipeline watch SETTINGS``, stops it with SIGTERM (or Ctrl-C on
Windows) and a grace period, and restarts it on failure. It never holds a secret: Web API
credentials come from the settings file's ``client_id_file`` / ``client_secret_file``, or, for
systemd, from an environment file the unit references (``EnvironmentFile=``), which holds
``PREFORM_PIPELINE_*_FILE`` or values and stays readable by its owner only.

Which platform's definition to write is an input (:class:`Host`), so a definition can be
prepared on one machine for another (``--platform``) and tested on any.
"""

from __future__ import annotations

import argparse
import getpass
import os
import shlex
import shutil
import stat
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath
from typing import Final, Literal, TextIO
from xml.sax.saxutils import escape

from preform_pipeline.commands.arguments.service import (
    DEFAULT_SERVICE_NAME,
    HELP,
    METHODS,
    NAME,
    add_arguments,
)
from preform_pipeline.errors import ConfigError, PipelineError
from preform_pipeline.settings import load_settings
from preform_pipeline.settings.files import read_settings_file
from preform_pipeline.userpath import expand_user, own_home
from preform_pipeline.wording import visible, visible_lines

__all__ = [
    "DEFAULT_SERVICE_NAME",
    "DEFAULT_STOP_TIMEOUT_S",
    "HELP",
    "METHODS",
    "NAME",
    "Host",
    "ServicePlan",
    "add_arguments",
    "describe",
    "plan_service",
    "run",
]


Platform = Literal["linux", "macos", "windows"]
Action = Literal["install", "uninstall", "status"]
#: How long a stop may take: the daemon's stop deadline for the running batch (60 s), plus
#: stopping its servers, with room to spare.
DEFAULT_STOP_TIMEOUT_S: Final = 120
#: systemd's and Task Scheduler's pause before a restart after a failure.
DEFAULT_RESTART_DELAY_S: Final = 10
#: Task Scheduler reads its XML as UTF-16 (what it exports), so the file is written so.
_TASK_XML_DECLARATION: Final = '<?xml version="1.0" encoding="UTF-16"?>\n'

EXIT_OK = 0
EXIT_FAILURE = 1


@dataclass(frozen=True)
class Host:
    """The machine a definition is for: platform, the account, its home, the program."""

    platform: Platform
    user: str
    home: PurePath
    uid: int | None
    executable: PurePath
    is_admin: bool

    @classmethod
    def current(cls, platform: Platform | None = None) -> Host:
        here = _this_platform()
        getuid = getattr(os, "getuid", None)
        uid = getuid() if callable(getuid) else None
        return cls(
            platform=platform or here,
            # Under sudo, the unit is for the person who asked, not for root.
            user=os.environ.get("SUDO_USER") or getpass.getuser(),
            home=own_home(),
            uid=uid,
            executable=_this_executable(),
            is_admin=uid == 0,
        )

    def path(self, text: str | PurePath) -> PurePath:
        return PureWindowsPath(text) if self.platform == "windows" else PurePosixPath(text)


def _this_platform() -> Platform:
    if sys.platform.startswith("win"):
        return "windows"
    return "macos" if sys.platform == "darwin" else "linux"


def _this_executable() -> Path:
    """The ``preform-pipeline`` program of this installation (beside its Python)."""
    scripts = Path(sys.executable).parent
    name = "preform-pipeline.exe" if os.name == "nt" else "preform-pipeline"
    return scripts / name


@dataclass(frozen=True)
class ServicePlan:
    """What an action does, in order: write files, run ``commands``, remove files, run
    ``then`` (a service manager re-reads its definitions after one was removed)."""

    method: str
    name: str
    writes: tuple[tuple[PurePath, str], ...] = ()
    commands: tuple[tuple[str, ...], ...] = ()
    removes: tuple[PurePath, ...] = ()
    then: tuple[tuple[str, ...], ...] = ()
    notes: tuple[str, ...] = ()
    #: systemd's scope (``system`` or ``user``); None for the other methods.
    scope: str | None = None


# -- definitions --------------------------------------------------------------------------------


def _unit_value(text: str | PurePath) -> str:
    """``text`` as a unit file's value that systemd reads back as written: ``%`` starts a
    specifier there (session 43: a settings folder ``lab%20share`` made the unit fail to
    load, "Invalid slot"; ``lab%hfolder`` silently became ``lab/rootfolder``)."""
    return str(text).replace("%", "%%")


def _unit_command(words: Sequence[str]) -> str:
    """An ``ExecStart=`` command line: quoted as a shell would, and, since systemd also
    expands ``$VARIABLES`` and C escapes inside the quotes, ``$`` and ``\\`` escaped too."""
    return _unit_value(shlex.join(words).replace("\\", "\\\\").replace("$", "$$"))


def _systemd_unit(host: Host, settings: PurePath, env_file: PurePath, scope: str) -> str:
    lines = [
        "# Written by `preform-pipeline service install`; `service uninstall` removes it.",
        "[Unit]",
        f"Description=preform-pipeline hot folder ({_unit_value(settings)})",
        "Wants=network-online.target",
        "After=network-online.target remote-fs.target",
        "",
        "[Service]",
        "Type=simple",
    ]
    if scope == "system":
        lines.append(f"User={host.user}")
    lines += [
        f"WorkingDirectory={_unit_value(settings.parent)}",
        f"ExecStart={_unit_command([str(host.executable), 'watch', str(settings)])}",
        "# Credentials and other PREFORM_PIPELINE_* variables: never in this file.",
        f"EnvironmentFile=-{_unit_value(env_file)}",
        "Environment=PYTHONUNBUFFERED=1",
        "KillSignal=SIGTERM",
        f"TimeoutStopSec={DEFAULT_STOP_TIMEOUT_S}",
        "Restart=on-failure",
        f"RestartSec={DEFAULT_RESTART_DELAY_S}",
        "",
        "[Install]",
        f"WantedBy={'multi-user.target' if scope == 'system' else 'default.target'}",
    ]
    return "\n".join(lines) + "\n"


def _plist(host: Host, label: str, settings: PurePath, log: PurePath) -> str:
    arguments = "".join(
        f"\n    <string>{escape(str(a))}</string>" for a in (host.executable, "watch", settings)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" '
        '"http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n'
        '<plist version="1.0">\n<dict>\n'
        f"  <key>Label</key><string>{escape(label)}</string>\n"
        f"  <key>ProgramArguments</key>\n  <array>{arguments}\n  </array>\n"
        f"  <key>WorkingDirectory</key><string>{escape(str(settings.parent))}</string>\n"
        "  <key>RunAtLoad</key><true/>\n"
        "  <key>KeepAlive</key><dict><key>SuccessfulExit</key><false/></dict>\n"
        f"  <key>ExitTimeOut</key><integer>{DEFAULT_STOP_TIMEOUT_S}</integer>\n"
        f"  <key>StandardOutPath</key><string>{escape(str(log))}</string>\n"
        f"  <key>StandardErrorPath</key><string>{escape(str(log))}</string>\n"
        "</dict>\n</plist>\n"
    )


def _cmd_quote(value: str | PurePath) -> str:
    return f'"{value}"'


def _nssm_script(host: Host, name: str, settings: PurePath, logs: PurePath) -> str:
    exe = host.executable
    lines = [
        "@echo off",
        "rem Written by `preform-pipeline service install`; `service uninstall` removes it.",
        f"nssm install {name} {_cmd_quote(exe)} watch {_cmd_quote(settings)}",
        f"nssm set {name} AppDirectory {_cmd_quote(settings.parent)}",
        f"nssm set {name} AppStdout {_cmd_quote(logs / (name + '.out.log'))}",
        f"nssm set {name} AppStderr {_cmd_quote(logs / (name + '.err.log'))}",
        "rem Stop with Ctrl-C first and give the running batch time to finish (ms).",
        f"nssm set {name} AppStopMethodConsole {DEFAULT_STOP_TIMEOUT_S * 1000}",
        f"nssm set {name} AppExit Default Restart",
        f"nssm set {name} AppRestartDelay {DEFAULT_RESTART_DELAY_S * 1000}",
        f"nssm set {name} Start SERVICE_AUTO_START",
    ]
    return "\r\n".join(lines) + "\r\n"


def _task_xml(host: Host, settings: PurePath) -> str:
    arguments = f"watch {_cmd_quote(settings)}"
    return (
        _TASK_XML_DECLARATION
        + '<Task version="1.4" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">\n'
        "  <RegistrationInfo><Description>preform-pipeline hot folder"
        "</Description></RegistrationInfo>\n"
        "  <Triggers><BootTrigger><Enabled>true</Enabled></BootTrigger></Triggers>\n"
        "  <Principals><Principal id=\"Author\">"
        f"<UserId>{escape(host.user)}</UserId><LogonType>Password</LogonType>"
        "<RunLevel>HighestAvailable</RunLevel></Principal></Principals>\n"
        "  <Settings>\n"
        "    <MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>\n"
        "    <DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>\n"
        "    <StopIfGoingOnBatteries>false</StopIfGoingOnBatteries>\n"
        "    <ExecutionTimeLimit>PT0S</ExecutionTimeLimit>\n"
        "    <RestartOnFailure><Interval>PT1M</Interval><Count>999</Count></RestartOnFailure>\n"
        "  </Settings>\n"
        "  <Actions Context=\"Author\"><Exec>\n"
        f"    <Command>{escape(str(host.executable))}</Command>\n"
        f"    <Arguments>{escape(arguments)}</Arguments>\n"
        f"    <WorkingDirectory>{escape(str(settings.parent))}</WorkingDirectory>\n"
        "  </Exec></Actions>\n"
        "</Task>\n"
    )


# -- plans --------------------------------------------------------------------------------------


def plan_service(
    action: Action,
    settings: PurePath,
    host: Host,
    *,
    method: str | None = None,
    name: str = DEFAULT_SERVICE_NAME,
    scope: str | None = None,
    env_file: PurePath | None = None,
) -> ServicePlan:
    """What ``action`` writes, removes and runs for the service ``name`` on ``host``.

    Raises :class:`~preform_pipeline.errors.ConfigError` for a method the platform lacks.
    """
    methods = METHODS[host.platform]
    chosen = method or methods[0]
    if chosen not in methods:
        hint = f"use {' or '.join(methods)} on {host.platform}"
        # "use systemd" alone left someone who wanted a Mac's plist from a Linux machine
        # with no way to it: the platform it belongs to is the option they need.
        elsewhere = [p for p, ms in METHODS.items() if chosen in ms]
        if elsewhere:
            hint += (f"; {chosen} is {elsewhere[0]}'s: add --platform {elsewhere[0]} to see "
                     f"its definition for a {elsewhere[0]} machine, shown and not installed")
        raise ConfigError(f"service method {chosen!r} is not available on {host.platform}",
                          hint=hint)
    if chosen == "systemd":
        return _systemd(action, settings, host, name, scope, env_file)
    if chosen == "launchd":
        return _launchd(action, settings, host, name)
    if chosen == "nssm":
        return _nssm(action, settings, host, name)
    return _schtasks(action, settings, host, name)


def _systemd(
    action: Action, settings: PurePath, host: Host, name: str, scope: str | None,
    env_file: PurePath | None,
) -> ServicePlan:
    scope = scope or ("system" if host.is_admin else "user")
    unit = f"{name}.service"
    ctl = ("systemctl",) if scope == "system" else ("systemctl", "--user")
    if scope == "system":
        folder = host.path("/etc/systemd/system")
        env = env_file or host.path("/etc") / name / f"{name}.env"
    else:
        folder = host.home / ".config" / "systemd" / "user"
        env = env_file or host.home / ".config" / name / f"{name}.env"
    path = folder / unit
    if action == "status":
        return ServicePlan("systemd", name, commands=((*ctl, "status", "--no-pager", unit),))
    if action == "uninstall":
        return ServicePlan(
            "systemd", name, commands=((*ctl, "disable", "--now", unit),), removes=(path,),
            then=((*ctl, "daemon-reload"),), scope=scope,
        )
    notes = [f"credentials and other variables: {env} (optional; keep it mode 0600)"]
    if scope == "user":
        notes.append(f"to run without a login session: loginctl enable-linger {host.user}")
    return ServicePlan(
        "systemd", name,
        writes=((path, _systemd_unit(host, settings, env, scope)),),
        commands=((*ctl, "daemon-reload"), (*ctl, "enable", "--now", unit)),
        notes=tuple(notes),
    )


def _launchd(action: Action, settings: PurePath, host: Host, name: str) -> ServicePlan:
    label = f"com.{name}.watch"
    path = host.home / "Library" / "LaunchAgents" / f"{label}.plist"
    domain = f"gui/{host.uid if host.uid is not None else 501}"
    if action == "status":
        return ServicePlan("launchd", name, commands=(("launchctl", "print", f"{domain}/{label}"),))
    if action == "uninstall":
        return ServicePlan(
            "launchd", name, removes=(path,),
            commands=(("launchctl", "bootout", f"{domain}/{label}"),),
        )
    log = host.home / "Library" / "Logs" / f"{name}.log"
    return ServicePlan(
        "launchd", name,
        writes=((path, _plist(host, label, settings, log)),),
        commands=(("launchctl", "bootstrap", domain, str(path)),),
        notes=("credentials: name client_id_file and client_secret_file in the settings' "
               "cloud section (launchd has no environment files)",),
    )


def _nssm(action: Action, settings: PurePath, host: Host, name: str) -> ServicePlan:
    script = settings.parent / f"{name}-service.cmd"
    if action == "status":
        return ServicePlan("nssm", name, commands=(("nssm", "status", name),))
    if action == "uninstall":
        return ServicePlan(
            "nssm", name, removes=(script,),
            commands=(("nssm", "stop", name), ("nssm", "remove", name, "confirm")),
        )
    return ServicePlan(
        "nssm", name,
        writes=((script, _nssm_script(host, name, settings, settings.parent / "logs")),),
        commands=(("cmd", "/c", str(script)), ("nssm", "start", name)),
        notes=(
            "run from an administrator prompt; the service runs as LocalSystem until you set "
            f"an account: nssm set {name} ObjectName .\\ACCOUNT (it asks for the password)",
            "credentials: name client_id_file and client_secret_file in the settings' cloud "
            "section; services do not see mapped drives: use UNC paths",
        ),
    )


def _schtasks(action: Action, settings: PurePath, host: Host, name: str) -> ServicePlan:
    xml = settings.parent / f"{name}-task.xml"
    if action == "status":
        return ServicePlan(
            "schtasks", name, commands=(("schtasks", "/Query", "/TN", name, "/V", "/FO", "LIST"),)
        )
    if action == "uninstall":
        return ServicePlan(
            "schtasks", name, removes=(xml,),
            commands=(
                ("schtasks", "/End", "/TN", name), ("schtasks", "/Delete", "/TN", name, "/F")
            ),
        )
    return ServicePlan(
        "schtasks", name,
        writes=((xml, _task_xml(host, settings)),),
        commands=(
            ("schtasks", "/Create", "/TN", name, "/XML", str(xml), "/RU", host.user, "/RP", "*"),
            ("schtasks", "/Run", "/TN", name),
        ),
        notes=(
            "schtasks asks for the account's password; ending the task stops the daemon "
            "without a graceful stop (safe: unfinished work is redone on the next start)",
            "credentials: name client_id_file and client_secret_file in the settings' cloud "
            "section",
        ),
    )


def describe(plan: ServicePlan, action: str) -> str:
    """What the plan does, as shown by ``--dry-run`` and before asking to confirm."""
    # Windows commands are shown the way cmd.exe reads them, the others as a POSIX shell does.
    join = subprocess.list2cmdline if plan.method in METHODS["windows"] else shlex.join
    out = [f"service {action}: {plan.name} ({plan.method})"]
    for path, text in plan.writes:
        out.append(f"write {path}:")
        out.extend(f"  | {line}" for line in text.replace("\r\n", "\n").rstrip("\n").split("\n"))
    out.extend(f"run: {join(command)}" for command in plan.commands)
    out.extend(f"remove {path}" for path in plan.removes)
    out.extend(f"run: {join(command)}" for command in plan.then)
    out.extend(f"note: {note}" for note in plan.notes)
    return "\n".join(out) + "\n"


# -- the command --------------------------------------------------------------------------------


#: The secret a settings file may hold in plain text (docs/settings.md: "prefer
#: client_secret_file or the environment, since settings files are often shared").
_PLAIN_SECRET: Final = ("cloud", "client_secret")


def _exposed_secret(settings: Path) -> str:
    """What to say when ``settings`` holds the Web API's secret in plain text and other users
    of this machine may read it, else "". A service keeps that file for years: session 43's
    newcomer installed one whose settings, mode 0644, held ``cloud.client_secret``, and was
    told only that the unit holds no secret."""
    section = read_settings_file(settings).get(_PLAIN_SECRET[0])
    if not isinstance(section, dict) or not section.get(_PLAIN_SECRET[1]):
        return ""
    mode = settings.stat().st_mode
    if os.name == "nt" or not mode & 0o044:
        return ""
    return (f"{settings} holds {'.'.join(_PLAIN_SECRET)} in plain text, and its mode "
            f"({stat.S_IMODE(mode):04o}) lets other users of this machine read it: the service "
            "would keep it so. Move the secret into a file named by cloud.client_secret_file (mode "
            "0600), or into the environment file the unit names, or make the settings "
            f"readable by their owner only (chmod 600 {shlex.quote(str(settings))})")


def _never_installed(plan: ServicePlan) -> str:
    """What to say when ``plan`` uninstalls a systemd unit whose file is not there, else "".
    `install` wrote none there, so there is nothing of it to disable: `systemctl disable`
    said "unit ... does not exist" before the reason (session 43). The other managers keep a
    service registered without the file `install` wrote: they are asked."""
    if plan.method != "systemd" or any(Path(path).exists() for path in plan.removes):
        return ""
    return (f"not installed: {plan.removes[0]} does not exist, so no service {plan.name} was "
            f"installed here by `service install` in this scope (--scope {plan.scope}); "
            "nothing was run or changed. Installed with another --scope or --name? Run the "
            "uninstall with those")


def _confirm(question: str, stdout: TextIO) -> bool:
    if not sys.stdin.isatty():
        return False
    stdout.write(f"{question} [y/N] ")
    stdout.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    host = Host.current(args.platform)
    same_machine = host.platform == _this_platform()
    method = args.method
    if method is None and host.platform == "windows":
        method = "nssm" if same_machine and shutil.which("nssm") else "schtasks"
    # Unused by status (which may have none): any path stands for it in the plan.
    settings = host.path(args.settings if args.action != "status" else ".")
    env_file = args.env_file
    if same_machine and env_file is not None:
        # The unit names it as written, and systemd expands no ~ (nor takes a relative one):
        # EnvironmentFile=-~/x.env was ignored, and the service ran without its variables.
        env_file = expand_user(env_file, source="--env-file").absolute()
    if same_machine and args.action != "status":
        settings = expand_user(args.settings, source="SETTINGS").resolve()
        if args.action == "install":
            if not settings.is_file():
                print(f"error: {args.settings}: no such settings file", file=stderr)
                return EXIT_FAILURE
            load_settings(settings)  # a service that cannot start is worse than none
            exposed = _exposed_secret(settings)
            if exposed:
                print(f"warning: {visible(exposed)}", file=stderr)
    plan = plan_service(
        args.action, settings, host, method=method, name=args.name, scope=args.scope,
        env_file=env_file,
    )
    # The definition names the settings file, the home folder and the service: a name with
    # a terminal's escape sequences is shown as escapes, its lines kept.
    stdout.write(visible_lines(describe(plan, args.action)))
    if not same_machine:
        print(f"nothing changed: this is the {host.platform} definition, shown only",
              file=stderr)
        return EXIT_OK
    never = _never_installed(plan) if args.action == "uninstall" else ""
    if never:
        print(visible(never), file=stderr)
        return EXIT_FAILURE
    if args.action != "status" and args.dry_run:
        return EXIT_OK
    if args.action != "status" and not args.yes and not _confirm(
        f"{args.action} the service {plan.name}?", stdout
    ):
        print("nothing changed (confirm, or pass --yes)", file=stderr)
        return EXIT_FAILURE
    try:
        return _apply(plan, stdout, stderr)
    except OSError as exc:
        raise PipelineError(
            f"service {args.action} failed: {exc}",
            hint="run as administrator / with sudo for a system service, or use --scope user",
        ) from exc


#: Why the service manager cannot be reached from here, and where the command can work.
_NOT_BOOTED: Final = (
    "this machine does not run systemd (a container, or WSL without systemd enabled)",
    "On a machine that runs systemd",
)
_NO_USER_MANAGER: Final = (
    "this session reaches no systemd user manager: `systemctl --user` needs the user's own "
    "login session (its XDG_RUNTIME_DIR), which `su` and `sudo -u` do not open",
    "From a session that reaches it (log in as that user over ssh or at the console)",
)
#: What systemctl says when the service manager it was asked for cannot be reached from here:
#: every later command would fail the same way (session 35: `service install` run under `su`
#: printed "Failed to connect to bus: No medium found" twice, and nothing else). Looked for in
#: this order: a machine without systemd says "Failed to connect to bus" too, after its own
#: reason (session 41).
_UNREACHABLE: Final = (
    ("System has not been booted with systemd", _NOT_BOOTED),
    ("Failed to connect to bus", _NO_USER_MANAGER),
)
#: What sd_booted(3) looks for: the folder exists only while systemd is the init system.
_SYSTEMD_BOOTED_MARKER: Final = Path("/run/systemd/system")


def _unreachable(said: str) -> tuple[str, str] | None:
    """Why the manager cannot be reached, from what systemctl ``said``, or None.

    `systemctl --user` on a machine that does not run systemd says only "Failed to connect to
    bus", as under `su` (session 43: a container's `service install --scope user` was told to
    log in over ssh, which would not have helped): the machine is asked, as sd_booted does."""
    found = next((reason for text, reason in _UNREACHABLE if text in said), None)
    if found is _NO_USER_MANAGER and not _SYSTEMD_BOOTED_MARKER.is_dir():
        return _NOT_BOOTED
    return found


def _apply(plan: ServicePlan, stdout: TextIO, stderr: TextIO) -> int:
    for path, text in plan.writes:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        utf16 = text.startswith(_TASK_XML_DECLARATION)
        target.write_text(text, encoding="utf-16" if utf16 else "utf-8", newline="")
        print(visible(f"wrote {target}"), file=stdout)
    status, stop = _run_all(plan.commands, plan.then, stdout, stderr)
    if stop == "unreachable":
        # Nothing removed: a service still registered keeps its definition, and the same
        # command run again from a session that reaches the manager finishes the job.
        return status
    for path in plan.removes:
        Path(path).unlink(missing_ok=True)
        print(visible(f"removed {path}"), file=stdout)  # below HOME, as `wrote` is
    if stop == "missing":
        # Said once, with the commands of `then` too: without the manager's tool they would
        # fail the same way (session 35: an uninstall said "not installed" twice).
        return status
    return max(status, _run_all(plan.then, (), stdout, stderr)[0])


#: Why :func:`_run_all` stopped before its last command: the manager's tool is not on PATH,
#: or the manager cannot be reached from this session (:data:`_UNREACHABLE`).
_Stop = Literal["missing", "unreachable"] | None


def _run_all(
    commands: tuple[tuple[str, ...], ...], later: tuple[tuple[str, ...], ...],
    stdout: TextIO, stderr: TextIO,
) -> tuple[int, _Stop]:
    """Run each command, passing its output on; a failing one (a service already stopped)
    does not stop the rest, but the status says so. Returns the status and why it stopped
    early, if it did: a manager's tool not installed, or a manager that cannot be reached,
    stops the rest, which are named (with ``later``, what the caller would run after them
    when the tool is missing) with what helps."""
    status = EXIT_OK
    for index, command in enumerate(commands):
        if shutil.which(command[0]) is None:
            left = "; ".join(f"`{shlex.join(c)}`" for c in (*commands[index:], *later))
            print(f"error: {command[0]} is not installed here (not found on PATH), so "
                  f"these were not run: {left}. If this machine has that service manager, run "
                  f"this command again with {command[0]} on PATH; if not, nothing here can "
                  "run the service", file=stderr)
            return EXIT_FAILURE, "missing"
        done = subprocess.run(list(command), capture_output=True, text=True, check=False)
        stdout.write(done.stdout)
        stderr.write(done.stderr)
        if done.returncode != 0:
            print(f"{shlex.join(command)} exited {done.returncode}", file=stderr)
            status = EXIT_FAILURE
            found = _unreachable(done.stderr)
            if found is not None:
                why, where = found
                left = "; ".join(f"`{shlex.join(c)}`" for c in commands[index:])
                print(f"not done: {why}. {where}, run this command again, or: {left}",
                      file=stderr)
                return status, "unreachable"
    return status, None
