"""`stf train`: train a deep model on one scene (Wald self-training) or a dated series; write a checkpoint."""
from __future__ import annotations

from .. import DEFAULT_TRAINING_MINUTES as DEFAULT_MINUTES
from .. import DEVICES, TRAINABLE_MODELS, TRAINING_MODES, TrainingRequest, parse_mask_rules, parse_scales, train
from .common import add_mask_rule_argument, add_threads_argument, add_unit_arguments, date_list, int_list, progress_bar

NAME = "train"
HELP = "train a deep model (marstfn, ganstfm, edcstfn) and write a checkpoint for stf fuse --weights"


def add_arguments(parser) -> None:
    parser.add_argument("--model", required=True, choices=TRAINABLE_MODELS)
    parser.add_argument("--out", required=True, help="checkpoint file to write (.pt)")
    parser.add_argument("--mode", default="self", choices=TRAINING_MODES,
                        help="self: reduced-resolution training on one scene (default); series: dated rasters")
    scene = parser.add_argument_group("self mode: one scene (any GDAL-readable rasters)")
    scene.add_argument("--coarse", help="coarse image at the target date")
    scene.add_argument("--fine", help="fine image at a reference date")
    scene.add_argument("--coarse-ref", help="coarse image at the reference date")
    scene.add_argument("--pan", help="panchromatic band at the target date")
    series = parser.add_argument_group("series mode")
    series.add_argument("--series",
                        help="CSV (date,coarse,fine[,pan,coarse_mask,fine_mask]) or folder of <date>_coarse/_fine/_pan/"
                             "_coarse_mask/_fine_mask rasters; masked pixels are left out of training")
    series.add_argument("--targets", help="comma-separated dates predicted in training (default: all)")
    series.add_argument("--val-date", help="date held out for validation (default: hold out rows)")
    add_mask_rule_argument(series)
    loop = parser.add_argument_group("training")
    loop.add_argument("--patch", type=int, default=256, help="patch size in pixels (default 256)")
    loop.add_argument("--epochs", type=int, default=20)
    loop.add_argument("--batch", type=int, default=8)
    loop.add_argument("--steps", type=int, help="steps per epoch (default: cover the data about once)")
    loop.add_argument("--lr", type=float, default=1e-3)
    loop.add_argument("--seed", type=int, default=0)
    loop.add_argument("--device", default=DEVICES[0], choices=DEVICES)
    add_threads_argument(loop)
    loop.add_argument("--val-fraction", type=float, default=0.1,
                      help="share of the valid pixels held out, in the bottom rows (default 0.1)")
    loop.add_argument("--patience", type=int, default=5, help="early stopping after N epochs without progress")
    loop.add_argument("--minutes", type=float, default=DEFAULT_MINUTES,
                      help=f"time budget: stop after the epoch that uses it up (default {DEFAULT_MINUTES:g}; 0 = none)")
    loop.add_argument("--resume", help="checkpoint to continue from (or fine-tune, if it is slim)")
    loop.add_argument("--slim", action="store_true", help="leave the optimiser state out of the final checkpoint")
    add_unit_arguments(parser)
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="model option")


def request_from(args) -> TrainingRequest:
    return TrainingRequest(
        model=args.model,
        output=args.out,
        mode=args.mode,
        coarse_target=args.coarse,
        fine_reference=args.fine,
        coarse_reference=args.coarse_ref,
        pan=args.pan,
        series=args.series,
        mask_rules=parse_mask_rules(args.mask_rule),
        target_dates=date_list(args.targets, "--targets"),
        patch=args.patch,
        epochs=args.epochs,
        batch=args.batch,
        steps_per_epoch=args.steps,
        lr=args.lr,
        seed=args.seed,
        device=args.device,
        threads=args.threads,
        validation_date=args.val_date,
        validation_fraction=args.val_fraction,
        patience=args.patience,
        minutes=args.minutes or None,
        resume=args.resume,
        keep_training_state=not args.slim,
        bands=int_list(args.bands) if args.bands else None,
        scales=parse_scales(args.scale),
        coarse_resolution=args.coarse_res,
        options=args.option,
    )


def run(args) -> int:
    request = request_from(args)
    with progress_bar(f"stf train ({request.model})") as progress:
        result = train(request, progress=progress)
    metrics = ", ".join(f"{k} {v:.4f}" for k, v in result.validation_metrics.items())
    print(
        f"{result.model} on {result.device}: {result.epochs} epoch(s) of {result.steps} step(s), best epoch "
        f"{result.best_epoch}{' (stopped early)' if result.stopped_early else ''}, {result.seconds:.1f} s"
    )
    print(f"validation: {metrics}")
    if result.verdict:
        print(result.verdict)
    print(f"checkpoint: {result.checkpoint}")
    return 0
