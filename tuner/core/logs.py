"""Read any GAN run's per-epoch loss log: gantune's own losses.csv, the seed's `epoch,d_loss,g_loss`, the BCE
tables with accuracies or D's probabilities, and the per-iteration lines a Keras notebook prints.

`read_run` returns one frame per run, one row per epoch (the last row wins when a resumed run repeated an
epoch), canonical lower-case column names, floats (NaN and +-inf kept: a diverged run is a signal).
"""

from __future__ import annotations

import dataclasses
import io
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from trainables.errors import GantuneError
from trainables.vocabulary import BCE, FAMILIES, WGAN
from tuner.core.signals import group_means

LOSS_FILE = "losses.csv"
BINARY_PROBE = 4096
HEADER_SHOWN = 80

# Column names as trainers spell them, keyed by the name lower-cased with everything but letters and digits removed
# ("Loss_D", "lossD" and "loss-d" are all "lossd"); the value is gantune's canonical name.
_SPELLINGS = {
    "d_loss": ("dloss", "lossd", "discloss", "lossdisc", "discriminatorloss", "lossdiscriminator", "criticloss",
               "losscritic", "closs", "lossc", "errd", "dcost", "dlosstotal", "totaldloss", "disccost", "critcost",
               "criticcost", "disloss", "lossdis", "d", "critic", "discriminator", "disc"),
    "g_loss": ("gloss", "lossg", "genloss", "lossgen", "generatorloss", "lossgenerator", "errg", "gcost", "gencost",
               "generatorcost", "g", "generator", "gen"),
    "d_real": ("dreal", "dx", "drealmean", "realscore", "scorereal", "dofx", "dxreal", "realout", "dout_real"),
    "d_fake": ("dfake", "dgz", "dgz1", "dfakemean", "fakescore", "scorefake", "dgzfake", "fakeout"),
    "w_dist": ("wdist", "wasserstein", "wassersteindistance", "wdistance", "emdistance", "wassersteinestimate",
               "wass", "wd", "westimate", "wassersteind", "wdistd", "emd", "em"),
    "gp": ("gp", "gradientpenalty", "gradpenalty", "penalty", "lossgp", "gploss"),
    "grad_norm": ("gradnorm", "gradientnorm", "criticgradnorm", "dgradnorm"),
    "d_acc": ("dacc", "accd", "discacc", "daccuracy", "accuracyd", "discriminatoraccuracy", "criticacc",
              "acc", "accuracy"),
    "g_acc": ("gacc", "accg", "genacc", "gaccuracy", "accuracyg", "generatoraccuracy"),
    "d_acc_real": ("daccreal", "realacc", "accreal", "daccr"),
    "d_acc_fake": ("daccfake", "fakeacc", "accfake", "daccf"),
    "d_loss_real": ("dlossreal", "lossdreal", "reallossd", "dreallossmean", "lossreal", "realloss", "errdreal",
                    "lossdisreal", "dlossr"),
    "d_loss_fake": ("dlossfake", "lossdfake", "fakelossd", "lossfake", "fakeloss", "errdfake", "lossdisfake",
                    "dlossf"),
}
ALIASES = {spelling: name for name, spellings in _SPELLINGS.items() for spelling in spellings}
# Affixes loggers add to a metric's name ("train/d_loss", "avg_loss_G", Lightning's "d_loss_epoch"), each with its
# rank: where two columns name one metric, the per-epoch value wins over a per-step one.
_PREFIXES = ("train", "avg", "mean", "running", "epoch")
_SUFFIXES = {"": 0, "epoch": 1, "mean": 1, "avg": 1, "train": 1, "step": 2, "batch": 2}
EPOCH_ALIASES = ("epochs", "ep", "iteration", "iter", "it", "step")
WGAN_COLUMNS = ("gp", "w_dist", "grad_norm")
PROBS_COLUMNS = frozenset({"epoch", "d_loss", "g_loss", "d_real", "d_fake"})
DELIMITERS = (",", ";", "\t")
CHECKPOINT_SUFFIXES = (".pt", ".pth")
COMMENT = "#"

_NUM = r"[-+]?(?:nan|inf(?:inity)?|\d+\.?\d*(?:e[-+]?\d+)?|\.\d+(?:e[-+]?\d+)?)"
_PCT = rf"({_NUM})\s*%?"
LINE_RE = re.compile(
    rf"(\d+)\s*\[\s*d\s*loss\s*:\s*\(?\s*({_NUM})\s*\)?\s*\(\s*r\s*({_NUM})\s*,\s*f\s*({_NUM})\s*\)\s*\]"
    rf"\s*\[\s*d\s*acc\s*:\s*\(?\s*{_PCT}\s*\)?\s*\(\s*{_PCT}\s*,\s*{_PCT}\s*\)\s*\]"
    rf"\s*\[\s*g\s*loss\s*:\s*({_NUM})\s*\]\s*\[\s*g\s*acc\s*:\s*{_PCT}\s*\]",
    re.IGNORECASE)
LINE_COLUMNS = ("epoch", "d_loss", "d_loss_real", "d_loss_fake", "d_acc", "d_acc_real", "d_acc_fake",
                "g_loss", "g_acc")


class LogError(GantuneError):
    """A loss log is missing, empty, binary or holds values that are not numbers."""


@dataclasses.dataclass(frozen=True)
class RunLog:
    """One run's per-epoch log: `frame` sorted by epoch, `family` "wgan" or "bce", `format` the layout read, `unit`
    what its epoch column counts ("iteration" where the log numbers iterations or steps, else "epoch")."""

    frame: pd.DataFrame
    family: str
    format: str
    source: Path
    run_dir: Path | None
    unit: str = "epoch"


def read_run(path: str | Path, family: str | None = None) -> RunLog:
    """Read a losses file, or a run directory's losses.csv; `family` forces "wgan" or "bce"."""
    _check_family(family)
    source, run_dir = _locate(Path(path))
    text = _read_text(source)
    frame, fmt = _parse(text, source)
    frame = _per_epoch(frame)
    return RunLog(frame=frame, family=family or infer_family(frame), format=fmt, source=source, run_dir=run_dir,
                  unit=_unit(text))


def parse_log(text: str, source: Path) -> pd.DataFrame:
    """A log's text as the per-epoch frame `read_run` makes (for a log that is still being written)."""
    frame, _ = _parse(text, source)
    return _per_epoch(frame)


def find_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """(epoch, path) of the checkpoints in run_dir/checkpoints, sorted; checkpoint_* wins a shared epoch."""
    folder = Path(run_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    found: dict[int, Path] = {}
    for path in sorted(folder.iterdir(), key=_checkpoint_rank):
        epoch = _checkpoint_epoch(path)
        if epoch is not None and epoch not in found:
            found[epoch] = path
    return sorted(found.items())


def infer_family(frame: pd.DataFrame) -> str:
    """"wgan" when the log has a penalty, Wasserstein or gradient-norm column; "bce" when it has accuracies, D
    probabilities or only non-negative losses; else "wgan"."""
    if any(c in frame and frame[c].notna().any() for c in WGAN_COLUMNS):
        return WGAN
    if any(c in frame for c in ("d_acc", "g_acc")):
        return BCE
    d_loss = _finite(frame, "d_loss")
    if "d_real" in frame and "d_fake" in frame and _within_unit(frame) and (d_loss >= 0).all():
        return BCE
    if (d_loss < 0).any():
        return WGAN
    return BCE if (d_loss >= 0).all() and (_finite(frame, "g_loss") >= 0).all() else WGAN


# --- locating and reading the file ---------------------------------------------------------------------------


def _check_family(family: str | None) -> None:
    if family is not None and family not in FAMILIES:
        raise LogError(f"unknown family {family!r}; valid: {', '.join(FAMILIES)}")


def _locate(path: Path) -> tuple[Path, Path | None]:
    if path.is_dir():
        return _losses_in(path), path
    if not path.is_file():
        raise LogError(f"not found: {path}")
    parent = path.parent
    is_run = (parent / "samples").is_dir() or (parent / "checkpoints").is_dir()
    return path, parent if is_run else None


def _losses_in(folder: Path) -> Path:
    if (folder / LOSS_FILE).is_file():
        return folder / LOSS_FILE
    for child in sorted(folder.iterdir()):
        if child.name.lower() == LOSS_FILE and child.is_file():
            return child
    raise LogError(f"no {LOSS_FILE} in {folder}")


def _read_text(source: Path) -> str:
    data = source.read_bytes()
    if b"\x00" in data[:BINARY_PROBE]:
        raise LogError(f"{source} is not a text log (binary data)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise LogError(f"{source} is not a text log (binary data)") from None
    if not text.strip():
        raise LogError(f"{source} is empty")
    return text


# --- parsing ------------------------------------------------------------------------------------------------


def _parse(text: str, source: Path) -> tuple[pd.DataFrame, str]:
    lines = _header_comment_uncommented(text.splitlines())
    lines = ["" if line.lstrip().startswith(COMMENT) else line for line in lines]
    if not any(line.strip() for line in lines):
        raise LogError(f"{source} holds only comment lines")
    header_at = next(i for i, line in enumerate(lines) if line.strip())
    header = lines[header_at].strip()
    if header.startswith(("{", "[{")):
        return _parse_json(text, source), "json"
    delimiter = _delimiter(header)
    columns = _canonical(_split_header(header, delimiter))
    if _has_losses(columns) and not _has_losses(list(_pairs_of(header))):
        return _parse_table(lines, header_at, delimiter, columns, source)
    parsed = _parse_lines(lines)
    if parsed is not None:
        return parsed, "bce_lines"
    parsed = _parse_pairs(lines)
    if parsed is not None:
        return parsed, "printed"
    shown = header if len(header) <= HEADER_SHOWN else header[:HEADER_SHOWN] + "..."
    raise LogError(f"{source} has no loss columns (expected epoch,d_loss,g_loss or one of the BCE formats); "
                   f"header: {shown}")


_KERAS_STEP_RE = re.compile(r"\s*\d+\s*\[\s*d\s*loss", re.IGNORECASE)


def _unit(text: str) -> str:
    """"iteration" where the header's epoch column is an iteration or step count (`iter`, `iteration`, `step`)."""
    lines = (line.strip() for line in text.splitlines())
    header = next((line for line in lines if line and not line.startswith(COMMENT)), "")
    if header.startswith(("{", "[")):
        return "epoch"
    keys = [_key(name) for name in _split_header(header, _delimiter(header))]
    if _KERAS_STEP_RE.match(header):  # the Keras GAN notebooks print one line per training step, numbered by it
        return "iteration"
    return "iteration" if "epoch" not in keys and set(keys) & {"iter", "iteration", "it", "step"} else "epoch"


def _header_comment_uncommented(lines: list[str]) -> list[str]:
    """`numpy.savetxt(..., header=...)` writes the header as a comment (`# epoch,d_loss,g_loss`): where the last
    comment line before the first data line names both losses, it is the header."""
    first = next((i for i, line in enumerate(lines) if line.strip() and not line.lstrip().startswith(COMMENT)), None)
    if not first or not lines[first - 1].lstrip().startswith(COMMENT):
        return lines
    candidate = lines[first - 1].lstrip().lstrip(COMMENT).strip()
    data_columns = _canonical(_split_header(lines[first], _delimiter(lines[first])))
    if not _has_losses(_canonical(_split_header(candidate, _delimiter(candidate)))) or _has_losses(data_columns):
        return lines
    return [*lines[:first - 1], candidate, *lines[first:]]


def _has_losses(columns: list[str]) -> bool:
    """Both losses; or the generator's and, for the critic's, its two terms (real and fake) or its W estimate."""
    return "g_loss" in columns and ("d_loss" in columns or {"d_loss_real", "d_loss_fake"} <= set(columns)
                                    or "w_dist" in columns)


def _parse_json(text: str, source: Path) -> pd.DataFrame:
    """JSON lines (one object per epoch or step, as many loggers append them) or one array of objects."""
    try:
        raw = pd.read_json(io.StringIO(text), lines=text.lstrip().startswith("{"), dtype=False)
    except ValueError as err:
        raise LogError(f"{source} cannot be read as JSON: {str(err).splitlines()[0]}") from None
    raw.columns = _canonical([str(c) for c in raw.columns])
    if not _has_losses(list(raw.columns)):
        raise LogError(f"{source} has no loss fields (expected epoch, d_loss, g_loss); fields: "
                       f"{', '.join(map(str, raw.columns))[:HEADER_SHOWN]}")
    raw = raw.map(lambda v: "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v))
    return _scale_percent(_numeric_table(raw, list(range(1, len(raw) + 1)), source))


def _delimiter(header: str) -> str:
    counts = {d: header.count(d) for d in DELIMITERS}
    best = max(counts, key=counts.get)
    return best if counts[best] else r"\s+"


def _split_header(header: str, delimiter: str) -> list[str]:
    parts = re.split(delimiter, header) if delimiter == r"\s+" else header.split(delimiter)
    return [p.strip().strip('"').strip("'").strip() for p in parts]


def _canonical(names: list[str]) -> list[str]:
    """gantune's name for each column a trainer wrote; where several columns name one metric, the best-ranked (see
    _SUFFIXES) takes it and the others keep their own names."""
    lowered = [n.lower() for n in names]
    keys = [_key(n) for n in names]
    targets = [_target(key, "epoch" in keys) for key in keys]
    best: dict[str, int] = {}
    for i, (target, rank) in enumerate(targets):
        if target and (target not in best or rank < targets[best[target]][1]):
            best[target] = i
    taken = {target for target in best if target not in lowered or lowered.index(target) == best[target]}
    return [target if target in taken and best[target] == i else name
            for i, (name, (target, _)) in enumerate(zip(lowered, targets))]


def _target(key: str, has_epoch: bool) -> tuple[str | None, int]:
    """(canonical name, rank) for a column key, or (None, 0) when it names nothing gantune reads."""
    if key in EPOCH_ALIASES + ("epoch",):
        return ("epoch", 0) if key == "epoch" or not has_epoch else (None, 0)
    for suffix, rank in _SUFFIXES.items():
        stem = key.removesuffix(suffix) if suffix else key
        for prefix in ("", *_PREFIXES):
            if stem.startswith(prefix) and stem[len(prefix):] in ALIASES:
                return ALIASES[stem[len(prefix):]], rank + (prefix != "")
    return None, 0


def _key(name: str) -> str:
    """A column name reduced to its lower-case letters and digits: "Loss_D", "loss-D" and "lossD" are "lossd"."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _parse_table(lines: list[str], header_at: int, delimiter: str, columns: list[str],
                 source: Path) -> tuple[pd.DataFrame, str]:
    body = "\n".join(lines[header_at:])
    try:
        raw = pd.read_csv(io.StringIO(body), sep=delimiter, engine="python", dtype=str, keep_default_na=False,
                          index_col=False, skipinitialspace=True)
    except (pd.errors.ParserError, ValueError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise LogError(f"{source} cannot be read as a table: {reason}") from None
    if raw.empty:
        raise LogError(f"{source} has a header but no rows")
    raw.columns = columns[:len(raw.columns)] + list(raw.columns[len(columns):])
    raw = raw.loc[:, ~pd.Index(raw.columns).duplicated()].fillna("")
    line_numbers = _data_line_numbers(lines, header_at)
    frame = _numeric_table(raw, line_numbers, source)
    return _scale_percent(frame), _table_format(frame)


def _data_line_numbers(lines: list[str], header_at: int) -> list[int]:
    """1-based file line of each data row (pandas skips blank lines)."""
    return [i + 1 for i in range(header_at + 1, len(lines)) if lines[i].strip()]


def _numeric_table(raw: pd.DataFrame, line_numbers: list[int], source: Path) -> pd.DataFrame:
    known = set(PROBS_COLUMNS) | set(LINE_COLUMNS) | {"epoch"}
    losses = [c for c in ("d_loss", "g_loss", "d_loss_real", "d_loss_fake", "w_dist") if c in raw]
    logged = ~(raw[losses].apply(lambda c: c.str.strip() == "")).all(axis=1)  # rows of other metrics only go
    raw, line_numbers = raw[logged], [n for n, keep in zip(line_numbers, logged) if keep]
    columns = {}
    for name in raw.columns:
        values = _to_floats(raw[name])
        if values is None:
            if name in known:
                _raise_bad_value(raw[name], line_numbers, source, name)
            continue  # an extra column that is not numeric (a timestamp, a phase name): not a metric
        columns[name] = values
    frame = pd.DataFrame(columns)
    if "d_loss" not in frame and "d_loss_real" in frame:  # the terms a PyTorch trainer adds: errD_real + errD_fake
        frame["d_loss"] = frame["d_loss_real"] + frame["d_loss_fake"]
    elif "d_loss" not in frame:  # a WGAN log of the critic's W estimate only: its loss less the penalty
        frame["d_loss"] = -frame["w_dist"]
    if "epoch" not in frame:
        frame.insert(0, "epoch", np.arange(len(frame), dtype=float))
    _check_epochs(frame["epoch"], line_numbers, source)
    return frame.assign(epoch=frame["epoch"].astype("int64"))


def _to_floats(column: pd.Series) -> pd.Series | None:
    try:
        return column.map(_to_float).astype(float)
    except ValueError:
        return None


def _to_float(value: str) -> float:
    text = str(value).strip().removesuffix("%").strip()
    if text.count(",") == 1 and "." not in text:  # a decimal comma ("0,69" in a ;-separated table)
        text = text.replace(",", ".")
    return math.nan if text == "" else float(text)


def _raise_bad_value(column: pd.Series, line_numbers: list[int], source: Path, name: str) -> None:
    for row, value in enumerate(column):
        try:
            _to_float(value)
        except ValueError:
            raise LogError(f"{source}: column {name} holds {str(value).strip()!r} on line "
                           f"{_line_of(row, line_numbers)}, not a number") from None


def _check_epochs(epochs: pd.Series, line_numbers: list[int], source: Path) -> None:
    for row, value in enumerate(epochs):
        if not math.isfinite(value) or value != int(value) or value < 0:
            raise LogError(f"{source}: column epoch holds {value!r} on line {_line_of(row, line_numbers)}, "
                           f"not an epoch number")


def _line_of(row: int, line_numbers: list[int]) -> int | str:
    return line_numbers[row] if row < len(line_numbers) else "?"


def _table_format(frame: pd.DataFrame) -> str:
    if any("acc" in c for c in frame.columns if c.startswith(("d_", "g_"))):
        return "bce_acc"
    return "bce_probs" if set(frame.columns) == PROBS_COLUMNS else "seed"


def _parse_lines(lines: list[str]) -> pd.DataFrame | None:
    rows = [m.groups() for m in map(LINE_RE.search, lines) if m]
    if not rows:
        return None
    frame = pd.DataFrame([[float(v) for v in row] for row in rows], columns=list(LINE_COLUMNS))
    return _scale_percent(frame.assign(epoch=frame["epoch"].astype("int64")))


_PAIR_RE = re.compile(rf"([A-Za-z][\w()\[\]/.-]*(?: [A-Za-z][\w()]*)?)\s*[:=]\s*\(?({_NUM})\s*%?", re.IGNORECASE)
_EPOCH_RE = re.compile(r"(?:epoch|iter(?:ation)?|step)\s*[:=#]?\s*\[?\s*(\d+)|^\s*\[\s*(\d+)\s*/\s*\d+\s*\]",
                       re.IGNORECASE)


def _parse_pairs(lines: list[str]) -> pd.DataFrame | None:
    """Printed lines such as `Epoch 3/50 - d_loss: 0.69 - g_loss: 0.71 - D(x): 0.52`: one row per line that names
    both losses; the epoch from the line (`Epoch 3`, `[3/50]`), else the row's position."""
    rows = [row for row in map(_pairs_of, lines) if row and "d_loss" in row and "g_loss" in row]
    if not rows:
        return None
    frame = pd.DataFrame(rows).astype(float)
    if "epoch" not in frame or frame["epoch"].isna().any():
        frame["epoch"] = np.arange(len(frame), dtype=float)
    return _scale_percent(frame.assign(epoch=frame["epoch"].astype("int64")))


def _pairs_of(line: str) -> dict[str, float]:
    row: dict[str, float] = {}
    epoch = _EPOCH_RE.search(line)
    if epoch:
        row["epoch"] = float(epoch.group(1) or epoch.group(2))
    for name, value in _PAIR_RE.findall(line):
        key = _key(name)
        canonical = ALIASES.get(key, "epoch" if key in EPOCH_ALIASES + ("epoch",) else name.lower())
        row.setdefault(canonical, float(value))
    return row


def _scale_percent(frame: pd.DataFrame) -> pd.DataFrame:
    """Accuracy columns printed as percents (any value above 1) become fractions."""
    scaled = {c: frame[c] / 100.0 for c in _accuracy_columns(frame) if (_finite(frame, c) > 1.0).any()}
    return frame.assign(**scaled)


def _accuracy_columns(frame: pd.DataFrame) -> list[str]:
    """d_acc, g_acc and any other accuracy a trainer prints (ACGAN's `op_acc`)."""
    return [c for c in frame.columns if c.startswith(("d_acc", "g_acc")) or _key(c).endswith(("acc", "accuracy"))]


def _per_epoch(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per epoch. Where the epoch number goes back (a resumed run logging again from its checkpoint), the
    latest pass wins; several rows of one epoch in one pass (a per-batch log) are averaged, unless the epoch's last
    row is NaN or infinite: a loss that blew up stays blown up."""
    passes = (frame["epoch"].diff() < 0).cumsum()
    latest = frame[passes == passes.groupby(frame["epoch"]).transform("max")]
    return group_means(latest.groupby("epoch", sort=True)).reset_index()[frame.columns]


# --- small helpers ------------------------------------------------------------------------------------------


def _finite(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame:
        return pd.Series(dtype=float)
    values = frame[column]
    return values[np.isfinite(values)]


def _within_unit(frame: pd.DataFrame) -> bool:
    both = pd.concat([_finite(frame, "d_real"), _finite(frame, "d_fake")])
    return bool(((both >= 0) & (both <= 1)).all())


def _checkpoint_epoch(path: Path) -> int | None:
    if not path.is_file() or path.suffix.lower() not in CHECKPOINT_SUFFIXES:
        return None
    numbers = re.findall(r"\d+", path.stem)
    return int(numbers[-1]) if numbers else None


def _checkpoint_rank(path: Path) -> tuple[int, str]:
    return (0 if path.name.lower().startswith("checkpoint") else 1, path.name)
