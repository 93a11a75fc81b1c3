"""The `lamina` command. Parsing imports nothing heavy: PyTorch loads only when a command needs it.

Exit codes: 0 success, 2 a problem the user can fix (config, data, files, a full disk), 1 a run that diverged or a
bug in lamina, 130 interrupted (Ctrl-C or SIGTERM, with a checkpoint saved).
"""

from __future__ import annotations

import argparse
import os
import sys

EXIT_OK, EXIT_BUG, EXIT_USER, EXIT_INTERRUPTED = 0, 1, 2, 130
FULL_INSTALL = {"torch", "pydantic", "pydantic_core", "yaml", "rich", "safetensors", "sklearn", "kornia"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lamina",
        description="Train, evaluate and use neural networks from one YAML config.",
        epilog="Start with: lamina train configs/digits_cnn.yaml   ·   docs: docs/guide.md",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def overrides(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--set",
            dest="overrides",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="override a config value by dotted path, e.g. --set train.epochs=5 (repeatable)",
        )

    train = commands.add_parser("train", help="train a model from a config (or resume a run)")
    train.add_argument("config", nargs="?", help="YAML config file")
    overrides(train)
    train.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue an interrupted run, or one its budget stopped, from its last checkpoint (--set may raise the "
        "budget: runtime.budget.*)",
    )
    train.add_argument("--runs-dir", default="runs", help="where run folders are created (default: runs)")
    train.add_argument("--name", help="run name (part of the run folder's name)")
    shown = train.add_mutually_exclusive_group()
    shown.add_argument("--quiet", action="store_true", help="print only the final result and the run folder")
    shown.add_argument(
        "--progress",
        choices=["auto", "rich", "plain"],
        default="auto",
        help="live bar (rich), a line per epoch (plain), or rich on a terminal (auto)",
    )

    evaluate = commands.add_parser("evaluate", help="metrics of a trained run (or an ensemble of runs) on a split")
    evaluate.add_argument(
        "run_dir", nargs="+", help="run folder; with several, their ensemble (mean of their predictions) beside each"
    )
    evaluate.add_argument("--split", default="test", choices=["train", "val", "test"], help="default: test")
    evaluate.add_argument("--json", action="store_true", help="print JSON")
    evaluate.add_argument(
        "--allow-unfinished",
        action="store_true",
        help="score a run that did not finish (its last checkpoint) instead of refusing",
    )

    predict = commands.add_parser(
        "predict", help="predict files of the kind a run was trained on: images, table rows, text, audio or arrays"
    )
    predict.add_argument(
        "run_dir", help="run folder, or a bundle folder written by 'lamina export' (run without PyTorch)"
    )
    predict.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="image files (PNG, JPEG, …), CSV or Parquet files of rows, text files (.txt: one text per line; .csv: "
        "the training text column), audio files (WAV) or .npy/.npz arrays (FILE.npz:KEY for one of several), as "
        "the run was trained on",
    )
    predict.add_argument("--json", action="store_true", help="print JSON lines")
    predict.add_argument(
        "--allow-unfinished",
        action="store_true",
        help="predict with a run that did not finish (its last checkpoint) instead of refusing",
    )

    explain = commands.add_parser(
        "explain",
        help="which parts of an input drove a run's predictions, checked for faithfulness (pictures and JSON)",
        epilog="methods — images: integrated_gradients (default), grad_cam, saliency, occlusion; tables: "
        "integrated_gradients (default), saliency, feature_ablation; text and language models: integrated_gradients "
        "(default), gradient_x_input, occlusion; audio: occlusion (default), integrated_gradients. docs/insight.md "
        "shows how to read the results",
    )
    explain.add_argument("run_dir", help="run folder")
    explain.add_argument(
        "inputs",
        nargs="*",
        metavar="INPUT",
        help="files to explain, as 'lamina predict' reads them (default: --count inputs of --split)",
    )
    explain.add_argument("--method", help="attribution method (default: the one for the run's kind of input)")
    explain.add_argument(
        "--target", help="explain towards this class, by name or index (default: each input's predicted class)"
    )
    explain.add_argument(
        "--split", choices=["train", "val", "test"], help="default: test (val for data without a test split)"
    )
    explain.add_argument(
        "--count",
        type=int,
        default=16,
        metavar="N",
        help="inputs of the split to explain, the first N of a random order seeded by 0 (default: 16)",
    )
    explain.add_argument(
        "--layer", metavar="NAME", help="the layer Grad-CAM explains (default: the last convolutional stage)"
    )
    explain.add_argument(
        "--output", metavar="DIR", help="folder to write (default: RUN/explanations/METHOD-SPLIT, or METHOD-files)"
    )
    explain.add_argument("--json", action="store_true", help="print the record (explanation.json) instead of a summary")

    # the defaults are those of lamina/generate.py's options (tests/test_generate.py holds them equal): --help
    # shows them without importing PyTorch
    generate = commands.add_parser(
        "generate",
        help="new samples from a generative run (VAE images, LM text)",
        epilog="variational autoencoders take --samples, --temperature, --seed, --output; language models "
        "(transformer, moe, rnn) take --prompt, --max-tokens, --temperature, --top-k, --seed, --output",
    )
    generate.add_argument("run_dir", help="run folder")
    generate.add_argument("--samples", type=int, metavar="N", help="images to draw, as one PNG grid (default: 64)")
    generate.add_argument("--prompt", metavar="TEXT", help="text to continue (default: a newline)")
    generate.add_argument("--max-tokens", type=int, metavar="N", help="tokens to generate (default: 300)")
    generate.add_argument(
        "--temperature", type=float, metavar="T", help="sampling temperature; lower is more conservative (default: 1.0)"
    )
    generate.add_argument(
        "--top-k", type=int, metavar="K", help="sample only among the k most likely tokens (default: all tokens)"
    )
    generate.add_argument(
        "--seed",
        type=int,
        help="random seed, for repeatable samples (default: 0 for images; text: a new sample each time)",
    )
    generate.add_argument(
        "--output",
        metavar="FILE",
        help="file to write (default: images go to plots/samples-SEED.png in the run folder; text is printed, and "
        "also written to FILE when given)",
    )

    calibrate = commands.add_parser(
        "calibrate",
        help="fit a temperature on a classification run's val split, so its probabilities mean what they say",
        epilog="records ECE, MCE, Brier and NLL before and after on val and test in summary.json and "
        "plots/reliability.png; predict, evaluate, explain and ensembles then use the temperature",
    )
    calibrate.add_argument("run_dir", help="run folder of a finished classification run")
    calibrate.add_argument("--json", action="store_true", help="print the calibration record as JSON")

    doctor = commands.add_parser(
        "doctor", help="what went wrong in a run (or didn't): findings with their evidence and a config change"
    )
    doctor.add_argument("run_dir", help="run folder (finished, diverged or interrupted)")
    doctor.add_argument("--json", action="store_true", help="print the findings as JSON")

    serve = commands.add_parser(
        "serve",
        help="an HTTP prediction service for a run folder (or an exported bundle): /predict, /health, /metadata",
        epilog="POST /predict takes JSON {\"instances\": [...]} or multipart files, read as 'lamina predict' reads "
        "them; the API is described at /docs (docs/deploy.md)",
    )
    serve.add_argument("source", metavar="RUN|BUNDLE", help="run folder, or a bundle written by 'lamina export'")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine)")
    serve.add_argument("--port", type=int, default=8000, help="default: 8000")
    serve.add_argument(
        "--backend", choices=["torch", "onnx"], help="torch: a run folder; onnx: a bundle (default: by the folder)"
    )
    serve.add_argument(
        "--max-batch", type=int, default=32, metavar="N", help="inputs per forward pass; 1 turns micro-batching off"
    )
    serve.add_argument(
        "--max-wait-ms", type=float, default=2.0, metavar="M", help="how long a request waits for others to batch"
    )
    serve.add_argument(
        "--max-request-bytes", type=int, default=10 * 1024 * 1024, metavar="B", help="larger bodies get 413 (10 MB)"
    )
    serve.add_argument("--max-instances", type=int, default=256, metavar="N", help="inputs per request (default: 256)")

    report = commands.add_parser(
        "report",
        help="a run's model card: one self-contained HTML page (or Markdown) with its data, training, results, "
        "explanations and known limits",
    )
    report.add_argument("run_dir", help="run folder")
    report.add_argument(
        "--format",
        choices=["html", "md"],
        default="html",
        help="html: one file, pictures inside (default); md: Markdown, pictures in a folder beside it (report_files/)",
    )
    report.add_argument("--output", metavar="FILE", help="file to write (default: RUN/report.html or RUN/report.md)")

    export = commands.add_parser(
        "export",
        help="a run as a bundle folder: an ONNX graph (preprocessing, model, scores) checked against PyTorch",
        epilog="the bundle (model.onnx, bundle.json, export.json) predicts without the run folder; docs/deploy.md",
    )
    export.add_argument("run_dir", help="run folder of a finished classification, regression or language-model run")
    export.add_argument("--format", choices=["onnx"], default="onnx", help="default: onnx")
    export.add_argument("--out", metavar="DIR", help="bundle folder to write (default: RUN/bundle)")

    validate = commands.add_parser("validate", help="check a config completely (data and model too), no training")
    validate.add_argument("config", help="YAML config file")
    overrides(validate)

    models = commands.add_parser("models", help="registered models and their options; with CONFIG, its size")
    models.add_argument("config", nargs="?", help="YAML config: print that model's layers and parameter count")
    overrides(models)

    datasets = commands.add_parser("datasets", help="registered data sets and their options")
    actions = datasets.add_subparsers(dest="action", metavar="ACTION")
    summary = actions.add_parser("summary", help="shapes, class balance, and one batch through the pipeline")
    summary.add_argument("config", help="YAML config file")
    overrides(summary)

    runs = commands.add_parser("runs", help="table of past runs")
    runs.add_argument("--runs-dir", default="runs", help="default: runs")

    schema = commands.add_parser("schema", help="JSON Schema of the config (for editor completion)")
    schema.add_argument("--output", help="write to this file instead of printing")
    return parser


def main(argv: list[str] | None = None) -> int:
    # Keep idle OpenMP threads from spinning: on a shared CPU, 2 spinning threads collapse (docs/performance.md).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    parser = build_parser()
    arguments = parser.parse_args(argv)
    if arguments.version:
        from lamina.core.version import __version__

        print(f"lamina {__version__}")
        return EXIT_OK
    if not arguments.command:
        parser.print_help()
        return EXIT_OK
    try:
        if arguments.command == "predict" and os.path.isfile(os.path.join(arguments.run_dir, "bundle.json")):
            from lamina.cli.bundle_predict import predict_bundle  # a bundle: no PyTorch, nor pydantic

            return predict_bundle(arguments) or EXIT_OK
        from lamina.cli import commands  # the commands import what they need (PyTorch) when they run

        return getattr(commands, arguments.command)(arguments) or EXIT_OK
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader went away (`lamina runs | head`): nothing more to say to it
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as error:
        return _report(error, arguments.debug)


def _report(error: Exception, debug: bool) -> int:
    from lamina.core.errors import LaminaError, RunInterrupted, TrainingDiverged

    if debug:
        import traceback

        traceback.print_exc()
    if isinstance(error, RunInterrupted):
        print(f"\n{error}", file=sys.stderr)
        print(error.run_dir)
        return EXIT_INTERRUPTED
    if isinstance(error, TrainingDiverged):  # not a mistake in the config as such: the run ran, and diverged
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BUG
    if isinstance(error, LaminaError):
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USER
    if isinstance(error, ModuleNotFoundError) and error.name in FULL_INSTALL:  # lamina[runtime] only: bundles
        print(f"error: this command needs {error.name!r}, which is not installed", file=sys.stderr)
        print(
            "  hint: only 'lamina predict BUNDLE' (a folder with bundle.json) runs with lamina's runtime packages; "
            "install lamina with its dependencies for the rest",
            file=sys.stderr,
        )
        return EXIT_USER
    if not debug:
        print(f"internal error (a bug in lamina): {type(error).__name__}: {error}", file=sys.stderr)
        print("  hint: run again with --debug for the traceback, and report it", file=sys.stderr)
    return EXIT_BUG


if __name__ == "__main__":
    sys.exit(main())
