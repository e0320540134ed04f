"""The ``wttm`` command line: train teachers, distil students, evaluate checkpoints, list presets and teachers.

Sub-commands::

    wttm train-teacher --arch resnet20 --epochs 2 --out runs/t ...
    wttm distill --teacher resnet20 --teacher-checkpoint runs/t/checkpoint.pth --student resnet8 \\
        --method wttm --gamma 0.3 --beta 1.5 --out runs/s [--resume] ...
    wttm distill ... --method kd,ttm,wttm --seed 0,1,2 --lr 0.05,0.1 --out runs/cohort   # one cohort
    wttm eval --arch resnet20 --checkpoint runs/t/checkpoint.pth [--dataset synthetic ...]
    wttm presets [--json]
    wttm teachers [--root DIR] [--fetch DEST]
    wttm present [--notebooks DIR] [--out DIR] [--port N] [--allow-host NAME] [--dry-run]
    wttm sweep SWEEP.yaml [--out DIR] [--force] [--list]

Every sub-command builds the same :class:`~wttm_core.engine.TrainConfig` the notebooks use. Comma-separated
``--method``, ``--seed`` and ``--lr`` lists train their product as one cohort (one teacher pass per batch for
all students, :func:`~wttm_core.engine.train_cohort`): one run directory per student under ``--out`` and
``cohort.json`` listing them; a single value trains one run in ``--out`` itself. Bad input prints
one line (``wttm <command>: error: ...``) and exits with code 2 before anything is written; an environment
error (disk full, permission refused) is one line with the real cause and exit code 1, with nothing half-written;
Ctrl-C during training saves the state and exits with code 130.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

__all__ = ["main", "build_parser", "run_subcommand"]

EXIT_USAGE = 2
EXIT_ENVIRONMENT = 1
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr and exit code 2."""

    def error(self, message: str) -> NoReturn:
        _fail(self.prog, message)


def _one_line(message: object) -> str:
    """The whole message on one line (never cut: the end of a message is often the way out)."""
    return " | ".join(line.strip() for line in str(message).splitlines() if line.strip())


def _fail(prog: str, message: object, code: int = EXIT_USAGE) -> NoReturn:
    print(f"{prog}: error: {_one_line(message)}", file=sys.stderr)
    raise SystemExit(code)


# ------------------------------------------------------------------------------------------------ arguments
def _seed(text: str) -> int:
    """A seed as the random generators take it: an integer in [0, 2**63)."""
    value = int(text)
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"expected an integer in [0, 2**63), got {text}")
    return value


def _path(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a folder path, got an empty string")
    return text


def _url(text: str) -> str:
    if not text.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"expected an http:// or https:// URL, got {text!r}")
    return text


def _list_of(kind: type, what: str) -> Any:
    def parse(text: str) -> list[Any]:
        try:
            values = [kind(piece) for piece in text.split(",")]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what} separated by commas, got {text!r}") from None
        if len(set(values)) != len(values):
            raise argparse.ArgumentTypeError(f"repeated value in {text!r}")
        return values

    return parse


_seed_list = _list_of(_seed, "seeds")
_float_list = _list_of(float, "numbers")


_PARSERS = {"seed": _seed, "seed_list": _seed_list, "float_list": _float_list, "path": _path}
_GROUP_TITLES = {
    "distill": None,  # the sub-command's own options
    "data": "data",
    "recipe": "recipe (defaults: the paper's CIFAR-100 recipe)",
    "execution": "execution",
    "output": "output",
}


def _field_options(item: Any) -> dict[str, Any]:
    """The ``add_argument`` keywords of one :class:`TrainConfig` field, from its ``metadata["cli"]`` and type."""
    cli, kind = item.metadata["cli"], str(item.type)
    options: dict[str, Any] = {"help": cli["help"]}
    if kind.startswith("bool"):  # False: a bare switch; True / None (auto): --flag / --no-flag
        if item.default is False:
            return {**options, "action": "store_true"}
        return {**options, "action": argparse.BooleanOptionalAction, "default": item.default}
    options["default"] = cli["default"]
    if cli["parse"] is not None:
        options["type"] = _PARSERS[cli["parse"]]
    elif kind.startswith("tuple[int"):
        options.update(type=int, nargs="+")
    elif kind.startswith(("int", "float")):
        options["type"] = int if kind.startswith("int") else float
    if cli["choices"] is not None:
        options["choices"] = cli["choices"]
    if cli["required"]:
        options["required"] = True
    return options


def _add_config_arguments(
    p: argparse.ArgumentParser, groups: Sequence[str], skip: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """One ``--flag`` per :class:`TrainConfig` field of ``groups`` (help, default and type from the field);
    returns the argument groups by name."""
    import dataclasses

    from wttm_core.engine import TrainConfig

    made: dict[str, Any] = {}
    for group in groups:
        title = _GROUP_TITLES[group]
        made[group] = target = p if title is None else p.add_argument_group(title)
        for item in dataclasses.fields(TrainConfig):
            if item.metadata.get("cli", {}).get("group") == group and item.name not in skip:
                target.add_argument("--" + item.name.replace("_", "-"), **_field_options(item))
    return made


def _add_training_arguments(p: argparse.ArgumentParser, *, distill: bool) -> None:
    """The flags of ``train-teacher`` / ``distill``: the configuration's fields, then resume / force."""
    groups = ("data", "recipe", "execution", "output")
    g = _add_config_arguments(p, ("distill", *groups) if distill else groups)["output"]
    g.add_argument("--resume", action="store_true", help="continue the run saved in --out (from its state.pth)")
    g.add_argument(
        "--resume-from-checkpoint",
        dest="resume",
        action="store_const",
        const="checkpoint",
        help="continue the run in --out from its last checkpoint.pth (when state.pth is lost; not bit-identical)",
    )
    g.add_argument("--force", action="store_true", help="replace the run in --out (only its own files)")


def build_parser() -> argparse.ArgumentParser:
    """The ``wttm`` argument parser (sub-commands train-teacher, distill, eval, presets, teachers)."""
    parser = _Parser(prog="wttm", description="Transformed teacher matching (TTM / WTTM) distillation lab.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("train-teacher", help="train a model with cross-entropy (a teacher or a vanilla student)")
    p.add_argument("--arch", required=True, help="architecture, e.g. resnet56")
    _add_training_arguments(p, distill=False)

    p = sub.add_parser("distill", help="distil a student from a frozen teacher (KD, TTM, WTTM, sums)")
    p.add_argument("--student", "--arch", dest="arch", required=True, help="student architecture")
    _add_training_arguments(p, distill=True)

    p = sub.add_parser("eval", help="top-1 / top-5 accuracy and loss of a checkpoint on a test set")
    p.add_argument("--arch", default=None, help="architecture (default: recorded in the checkpoint)")
    p.add_argument("--checkpoint", required=True, help="checkpoint file (standard layout or state_dict)")
    _add_config_arguments(p, ("data",), skip=frozenset({"train_size"}))
    p.add_argument("--batch-size", type=int, default=256, help="evaluation batch size (256)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--amp", default="off", choices=("auto", "off", "bf16", "fp16"), help="precision (off)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")

    p = sub.add_parser("presets", help="the recipe and the Table 8/9 gamma/beta presets the engine uses")
    p.add_argument("--json", action="store_true", help="print as JSON")

    p = sub.add_parser("teachers", help="list the standard CIFAR-100 teachers; --fetch downloads them")
    p.add_argument("--root", default="data", help="where teachers are looked for (data)")
    p.add_argument("--fetch", metavar="DEST", default=None, help="download and unpack the teachers into DEST")
    p.add_argument("--url", type=_url, default=None, help="release archive URL (default: the mdistiller release)")

    from wttm_core.lab import present, sweep

    p = sub.add_parser("present", help="classroom mode: the interactive notebooks as Voila dashboards (token)")
    present.add_arguments(p)
    p = sub.add_parser("sweep", help="re-execute a notebook over a parameter grid (papermill)")
    sweep.add_arguments(p)
    # parsed by wttm_core.lab.runner (see main); listed here for --help
    sub.add_parser("notebooks", help="execute every notebook into build/notebooks/ with an index page (the main job)")
    return parser


# ------------------------------------------------------------------------------------------------ commands
def _check_data_dir(args: argparse.Namespace) -> str:
    if args.data_dir is None:
        return "data"
    if not Path(args.data_dir).is_dir() and not args.download:
        raise ValueError(f"--data-dir: {args.data_dir} does not exist")
    return str(args.data_dir)


def _config_from_args(args: argparse.Namespace, method: str, seed: int, lr: float | None, out: str) -> Any:
    """The configuration of one student (``method``, ``seed``, ``lr`` and ``out`` picked from the lists): every
    field that has a flag on this sub-command, ``None`` left to the recipe / the presets."""
    import dataclasses

    from wttm_core._checks import check_number
    from wttm_core.engine import TrainConfig

    picked = {"method": method, "seed": seed, "lr": lr, "out": out}
    given = {
        item.name: picked.get(item.name, getattr(args, item.name))
        for item in dataclasses.fields(TrainConfig)
        if "cli" in item.metadata and hasattr(args, item.name)
    }
    if args.command == "distill":
        if args.teacher is None and args.teacher_checkpoint is None:
            raise ValueError("--teacher and/or --teacher-checkpoint is required")
    else:
        given["method"] = "ce"
    fields = {k: v for k, v in given.items() if v is not None}
    if "milestones" in fields:
        fields["milestones"] = tuple(fields["milestones"])
    for name in ("gamma", "beta"):  # None means "preset"; anything given must be valid
        if name in fields:
            check_number(f"--{name}", fields[name], low=0, low_open=True)
    fields["data_dir"] = _check_data_dir(args)
    return TrainConfig(arch=args.arch, **fields)


def _students(args: argparse.Namespace) -> list[tuple[str, int, float | None, str]]:
    """``(method, seed, lr, out)`` of every student: the product of the lists; with several, each student's run
    directory under ``--out`` is named after the values that vary (``kd-lr0.1-s2``)."""
    import itertools
    import re

    methods = [m.strip() for m in args.method.split(",")] if args.command == "distill" else ["ce"]
    if len(set(methods)) != len(methods) or not all(methods):
        raise ValueError(f"--method: expected distinct methods separated by commas, got {args.method!r}")
    lrs: list[float | None] = list(args.lr) if args.lr else [None]
    grid = list(itertools.product(methods, lrs, args.seed))
    if len(grid) == 1:
        method, lr, seed = grid[0]
        return [(method, seed, lr, args.out)]
    students = []
    for method, lr, seed in grid:
        parts = [re.sub(r"[^a-z0-9.]+", "-", method.lower()).strip("-")] if len(methods) > 1 else []
        parts += [f"lr{lr:g}"] if len(lrs) > 1 else []
        parts += [f"s{seed}"] if len(args.seed) > 1 else []
        students.append((method, seed, lr, str(Path(args.out) / "-".join(parts))))
    if len({out for *_, out in students}) != len(students):
        raise ValueError(f"--method: {args.method!r} names two methods the same folder")
    return students


def _cmd_train(args: argparse.Namespace) -> int:
    from wttm_core.engine import train, train_cohort

    if args.resume and args.force:
        raise ValueError(
            "--resume and --force contradict each other: --resume continues the run in --out, "
            "--force replaces it; pass only one"
        )
    configs = [_config_from_args(args, *student) for student in _students(args)]
    if len(configs) == 1:
        summaries = [train(configs[0], resume=args.resume, force=args.force)]
    else:
        manifest = Path(args.out) / "cohort.json"
        summaries = train_cohort(configs, resume=args.resume, force=args.force, manifest=manifest)
    for summary, config in zip(summaries, configs, strict=True):
        if "diverged" in summary:
            print(f"{summary['method']} {summary['arch']} in {config.out} stopped: {summary['diverged']}")
        elif not args.quiet:
            best, last = summary["best_test_acc"], summary["last_test_acc"]
            print(
                f"{summary['method']} {summary['arch']}: best test acc {best:.2f}% (epoch {summary['best_epoch']}), "
                f"last {last:.2f}% (epoch {summary['last_epoch']}); files in {config.out}"
            )
    return 1 if any("diverged" in summary for summary in summaries) else 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from wttm_core.data import load_dataset
    from wttm_core.engine import evaluate_model
    from wttm_core.models import load_checkpoint

    model = load_checkpoint(args.checkpoint, arch=args.arch)
    options = {"similarity": args.synthetic_similarity} if args.dataset == "synthetic" else {}
    dataset = load_dataset(
        args.dataset,
        "test",
        data_dir=_check_data_dir(args),
        size=args.test_size,
        seed=args.data_seed,
        download=args.download,
        **options,
    )
    result = evaluate_model(model, dataset, device=args.device, amp=args.amp, batch_size=args.batch_size)
    if args.json:
        print(json.dumps({"checkpoint": args.checkpoint, "dataset": args.dataset, **result}))
    else:
        print(
            f"{args.checkpoint} on {args.dataset} test ({int(result['images'])} images): "
            f"top-1 {result['top1']:.2f}%  top-5 {result['top5']:.2f}%  loss {result['loss']:.4f}"
        )
    return 0


def _cmd_presets(args: argparse.Namespace) -> int:
    import dataclasses

    from wttm_core.loss_terms import methods_markdown
    from wttm_core.paper import PAIR_PRESETS, RECIPE

    if args.json:
        print(
            json.dumps(
                {"recipe": dataclasses.asdict(RECIPE), "pairs": [dataclasses.asdict(p) for p in PAIR_PRESETS]}, indent=2
            )
        )
        return 0
    r = RECIPE
    print(
        f"recipe: {r.epochs} epochs, batch {r.batch_size}, SGD momentum {r.momentum}, weight decay "
        f"{r.weight_decay}, lr {r.lr} ({r.small_lr} for {', '.join(r.small_lr_students)}), x{r.lr_decay} at "
        f"epochs {'/'.join(map(str, r.milestones))} (scaled with --epochs); KD T={r.kd_temperature:g}, "
        f"CE {r.kd_ce_weight} / KD {r.kd_weight}; TTM/WTTM CE weight {r.ttm_ce_weight:g}"
    )
    header = (
        f"{'table':>5}  {'teacher -> student':<26} {'TTM gamma':>9} {'beta':>6}  {'WTTM gamma':>10} {'beta':>6}"
        f"  {'WTTM-noCE gamma':>15}"
    )
    print(header)
    print("-" * len(header))
    for p in PAIR_PRESETS:
        noce = f"{p.wttm_noce_gamma:g}" if p.wttm_noce_gamma is not None else "-"
        table = f"{p.table}{'*' if p.reconstructed else ''}"
        print(
            f"{table:>5}  {p.pair:<26} {p.ttm_gamma:>9g} {p.ttm_beta:>6g}  {p.wttm_gamma:>10g} "
            f"{p.wttm_beta:>6g}  {noce:>15}"
        )
    print("* Table 8 (reconstructed): the row assignment was rebuilt from a damaged copy of the paper.")
    print(
        "gamma = 1/T. WTTM without CE: beta not published; the engine uses the pair's WTTM beta. "
        "Unknown pairs need --gamma and --beta."
    )
    print(f"\nmethods and their defaults:\n{methods_markdown()}")
    return 0


def _entry(entry: Any, name: str) -> Any:
    return entry.get(name) if isinstance(entry, dict) else getattr(entry, name, None)


def _cmd_teachers(args: argparse.Namespace) -> int:
    from wttm_core import teachers as T

    if args.fetch is not None:
        kwargs = {"url": args.url} if args.url else {}
        T.fetch_teachers(args.fetch, **kwargs)
        root = args.fetch
    else:
        root = args.root
    print(f"{'name':<12} {'arch':<12} {'published top-1':>15}  {'sha256':<8}  file under {root}")
    for name, entry in T.STANDARD_TEACHERS.items():
        try:
            where = str(T.find_teacher_checkpoint(name, root))
        except FileNotFoundError:
            where = "missing"
        accuracy = _entry(entry, "accuracy")
        shown = f"{accuracy:.2f}%" if isinstance(accuracy, int | float) else "?"
        digest = "known" if _entry(entry, "sha256") else "unknown"
        print(f"{name:<12} {_entry(entry, 'arch') or name:<12} {shown:>15}  {digest:<8}  {where}")
    for name, entry in T.STANDARD_TEACHERS.items():
        if _entry(entry, "note"):
            print(f"note ({name}): {_entry(entry, 'note')}")
    return 0


def _cmd_present(args: argparse.Namespace) -> int:
    from wttm_core.lab import present

    return present.run(args)


def _cmd_sweep(args: argparse.Namespace) -> int:
    from wttm_core.lab import sweep

    return sweep.run(args)


_COMMANDS = {
    "train-teacher": _cmd_train,
    "distill": _cmd_train,
    "eval": _cmd_eval,
    "presets": _cmd_presets,
    "teachers": _cmd_teachers,
    "present": _cmd_present,
    "sweep": _cmd_sweep,
}


def _environment_message(error: OSError) -> str:
    """An operating-system error as the user can act on it: the cause first, then the file."""
    cause = error.strerror or str(error) or type(error).__name__
    where = f": {error.filename}" if error.filename else ""
    return f"{cause}{where}" if error.strerror else f"{type(error).__name__}: {cause}"


def _run_command(prog: str, args: argparse.Namespace) -> int:
    """Run one sub-command; every failure a user can cause or fix becomes one line (see :func:`main`)."""
    import pickle

    try:
        return _COMMANDS[args.command](args)
    except KeyboardInterrupt as interrupt:
        print(f"{prog}: {_one_line(interrupt) or 'interrupted'}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader of our output went away (`wttm presets | head -1`): nothing to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ENVIRONMENT
    except (FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError) as error:  # a path given
        _fail(prog, _environment_message(error) if error.strerror else error)
    except OSError as error:  # environment: disk full, permission, network; the real cause, exit 1
        _fail(prog, _environment_message(error), code=EXIT_ENVIRONMENT)
    except (ValueError, TypeError, LookupError, pickle.UnpicklingError) as error:  # bad input: exit 2
        _fail(prog, error)
    except MemoryError:
        _fail(prog, "out of memory (a smaller --batch-size or --train-size may fit)", code=EXIT_ENVIRONMENT)
    except Exception as error:  # a bug or a failure of the run itself (e.g. divergence): one line, exit 1
        from wttm_core.engine import TrainingDiverged

        if isinstance(error, TrainingDiverged):
            _fail(prog, error, code=EXIT_ENVIRONMENT)
        if os.environ.get("WTTM_TRACEBACK"):
            raise
        _fail(prog, f"{type(error).__name__}: {error} (set WTTM_TRACEBACK=1 to see where)", code=EXIT_ENVIRONMENT)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``wttm`` console script; returns the exit code.

    Exit codes: 0 success, 2 bad input (one line naming the argument or file; nothing written), 1 an
    environment error (disk full, permission: one line with the real cause; nothing half-written) or a failed
    run, 130 Ctrl-C (the state is saved).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["notebooks"]:  # its own parser; the index page is on unless --no-index
        from wttm_core.lab.runner import main as run_notebooks

        return run_notebooks(["--index", *argv[1:]])
    parser = build_parser()
    args = parser.parse_args(argv)
    return _run_command(f"wttm {args.command}", args)


def run_subcommand(command: str, argv: Sequence[str]) -> int:
    """``wttm <command> argv`` as a function returning the exit code (the ``python -m`` entry points)."""
    try:
        return main([command, *argv])
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)


if __name__ == "__main__":
    sys.exit(main())
