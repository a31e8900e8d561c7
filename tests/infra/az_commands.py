"""The az commands and flags the deploy scripts run, and a snapshot of the real az CLI's command table for them.

The normal suite checks the scripts against the committed snapshot (tests/infra/data/az-commands.json); `make
check-infra` regenerates it from the real az CLI (azure-cli from PyPI, in its own cached venv), so a renamed command
or flag shows up as a diff:

    .cache/azcli-venv/bin/python -m tests.infra.az_commands .cache/azcli-venv/bin/az
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

INFRA_DIR = Path(__file__).resolve().parents[2] / "infra"
SCRIPTS = ("deploy.sh", "tenant-setup.sh", "common.sh")
DATA_FILE = Path(__file__).with_name("data") / "az-commands.json"
COMMAND_END = {")", "|", "||", ";", "&&", "&", "<<<", ">", "2>"}
COMMAND_WORD = re.compile(r"[a-z][a-z0-9-]*")
ARRAY_EXPANSION = re.compile(r"\$\{(\w+)\[@\]\}")
# An option line of `az ... --help`: "    --name --subscription -n -s : Name or ID of subscription."
HELP_OPTION = re.compile(r"^\s{4}((?:-{1,2}[\w-]+\s+)*-{1,2}[\w-]+)\s*(?:\[[^\]]*\]\s*)?:", re.MULTILINE)


def logical_lines(text: str) -> list[str]:
    """The script's lines with backslash continuations joined."""
    return text.replace("\\\n", " ").splitlines()


def tokens(line: str) -> list[str]:
    """Shell words and operators of one line, quotes respected, comments dropped."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        return list(lexer)
    except ValueError:  # an unbalanced quote inside a comment or heredoc: not a command line
        return []


def array_flags(text: str) -> dict[str, set[str]]:
    """Flags held in bash arrays (NAME=(--a x --b y), local too), expanded once."""
    arrays: dict[str, list[str]] = {}
    for line in logical_lines(text):
        match = re.match(r"\s*(?:local\s+)?(\w+)=\((.*)\)\s*$", line)
        if match:
            arrays[match.group(1)] = tokens(match.group(2))
    flags: dict[str, set[str]] = {}
    for name, words in arrays.items():
        flags[name] = {w for w in words if w.startswith("--")}
        for word in words:
            for inner in ARRAY_EXPANSION.findall(word):
                flags[name] |= {w for w in arrays.get(inner, []) if w.startswith("--")}
    return flags


def script_commands() -> dict[str, set[str]]:
    """{'deployment sub create': {'--name', ...}} for every az call in the scripts (flags from arrays included)."""
    found: dict[str, set[str]] = {}
    for script in SCRIPTS:
        for command, flags in commands_in((INFRA_DIR / script).read_text()).items():
            found.setdefault(command, set()).update(flags)
    return found


def commands_in(text: str) -> dict[str, set[str]]:
    """The az calls of one script and the flags each is given."""
    found: dict[str, set[str]] = {}
    arrays = array_flags(text)
    for line in logical_lines(text):
        words = tokens(line)
        for start, word in enumerate(words):
            if word != "az":
                continue
            position = start + 1
            command: list[str] = []
            while position < len(words) and COMMAND_WORD.fullmatch(words[position]):
                command.append(words[position])
                position += 1
            if not command:
                continue  # `require az`: the name, not a call
            flags = found.setdefault(" ".join(command), set())
            while position < len(words) and words[position] not in COMMAND_END:
                argument = words[position]
                if argument.startswith("--"):
                    flags.add(argument.split("=")[0])
                for name in ARRAY_EXPANSION.findall(argument):
                    flags |= arrays.get(name, set())
                position += 1
    return found


def help_flags(az: str, command: str) -> list[str]:
    """Every option `az <command> --help` lists (long and short names), from the real CLI."""
    result = subprocess.run([az, *command.split(), "--help"], capture_output=True, text=True, timeout=120)
    if result.returncode != 0 or "Arguments" not in result.stdout:
        raise SystemExit(f"az {command} --help failed: {result.stderr.strip()[:300]}")
    return sorted({flag for names in HELP_OPTION.findall(result.stdout) for flag in names.split()})


def main(az: str) -> None:
    """Write the snapshot for the commands the scripts use now."""
    version = json.loads(subprocess.run([az, "version"], capture_output=True, text=True, check=True).stdout)
    commands = {command: help_flags(az, command) for command in sorted(script_commands())}
    data = {
        "azure-cli": version["azure-cli"],
        "generated": datetime.now(UTC).date().isoformat(),
        "regenerate": "make check-infra",
        "commands": commands,
    }
    DATA_FILE.write_text(json.dumps(data, indent=2) + "\n")
    print(f"{DATA_FILE}: {len(commands)} commands from azure-cli {version['azure-cli']}")


if __name__ == "__main__":
    main(sys.argv[1])
