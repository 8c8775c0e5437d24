"""The user's own config file, any of the seed style (config.py of UPPER_CASE constants), JSON, YAML or TOML:
read its values, and rewrite only the lines of the keys a plan changes (the rest of the file untouched)."""

from __future__ import annotations

import ast
import difflib
import json
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from trainables.errors import ConfigError


def read(path: Path) -> dict[str, Any]:
    """UPPER_CASE keys (as spelled in the file, upper-cased) -> values."""
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    text = path.read_text()
    try:
        data = _parse(path, text)
    except (SyntaxError, ValueError) as err:
        raise ConfigError(f"config file {path} cannot be read: {str(err).splitlines()[0][:120]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold key-value pairs")
    return {str(k).upper(): v for k, v in data.items()}


def for_run(path: Path | None, run_dir: Path | None) -> dict[str, Any]:
    """The user's config (`path`), else the config.json a gantune run writes in its folder before its first epoch,
    else nothing."""
    if path is not None:
        return read(path)
    if run_dir is not None and (run_dir / "config.json").is_file():
        return read(run_dir / "config.json")
    return {}


def _parse(path: Path, text: str) -> Any:
    suffix = path.suffix.lower()
    if suffix == ".py":
        return _py_constants(text)
    if suffix == ".json":
        return json.loads(text)
    if suffix in (".yaml", ".yml"):
        import yaml

        return yaml.safe_load(text)
    if suffix == ".toml":
        import tomllib

        return tomllib.loads(text)
    raise ValueError(f"unknown config type {suffix!r}; use .py, .json, .yaml or .toml")


def _py_constants(text: str) -> dict[str, Any]:
    found = {}
    for node in ast.parse(text).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name.isupper():
                try:
                    found[name] = ast.literal_eval(node.value)
                except ValueError:
                    continue  # computed values (paths, expressions) are not ours to change
    return found


def _literal(value: Any, suffix: str) -> str:
    if suffix == ".py":
        return repr(value)
    if suffix == ".toml" and isinstance(value, str):
        return json.dumps(value)
    if value is None:
        return "null"
    return json.dumps(value)


def rewrite(path: Path, changes: Mapping[str, Any]) -> str:
    """The file's text with each changed key's value replaced in place; keys it lacks are appended."""
    text, suffix = path.read_text(), path.suffix.lower()
    if suffix == ".json":
        data = json.loads(text)
        keys = {k.upper(): k for k in data}
        data.update({keys.get(k, k): v for k, v in changes.items()})
        return json.dumps(data, indent=2) + "\n"
    separator = {".py": "=", ".toml": "=", ".yaml": ":", ".yml": ":"}[suffix]
    for key, value in changes.items():
        pattern = re.compile(rf"^(\s*{re.escape(key)}\s*{separator}\s*)([^#\n]*?)(\s*(#.*)?)$", re.M | re.I)
        new_text, count = pattern.subn(lambda m, v=value: m.group(1) + _literal(v, suffix) + m.group(3), text,
                                       count=1)
        if count == 0:
            spacer = " = " if separator == "=" else ": "
            new_text = text + ("" if text.endswith("\n") else "\n") + f"{key}{spacer}{_literal(value, suffix)}\n"
        text = new_text
    return text


def diff(path: Path, new_text: str) -> str:
    old = path.read_text().splitlines(keepends=True)
    return "".join(difflib.unified_diff(old, new_text.splitlines(keepends=True), f"a/{path.name}", f"b/{path.name}"))


def write(path: Path, new_text: str) -> Path:
    """Replace the file, keeping the original beside it as PATH.bak (PATH.bak.1, ... if that exists)."""
    backup = path.with_name(path.name + ".bak")
    n = 0
    while backup.exists():
        n += 1
        backup = path.with_name(f"{path.name}.bak.{n}")
    shutil.copy2(path, backup)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(new_text)
    tmp.replace(path)
    return backup


def read_mapping(path: Path, what: str = "file") -> dict[str, Any]:
    """A JSON, YAML or TOML file that must hold a mapping, keys as written."""
    if not path.is_file():
        raise ConfigError(f"{what} not found: {path}")
    if path.suffix.lower() not in (".json", ".yaml", ".yml", ".toml"):
        raise ConfigError(f"{what} {path} must be .json, .yaml, .yml or .toml")
    try:
        data = _parse(path, path.read_text())
    except Exception as err:  # json and toml raise ValueErrors, yaml its own YAMLError
        raise ConfigError(f"{what} {path} cannot be read: {str(err).splitlines()[0][:120]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {path} must hold key-value pairs")
    return data
