"""``bnas-tf convert MODEL -o model.tflite [--verify-on DATASET [--embedding]] [--benchmark] [--threads N]``.

Loads a saved model (``.keras``, SavedModel folder, or run folder with
``model.keras``) in Keras safe mode, converts it with Larq Compute Engine,
prints size against the weights' bit-level bound and the operator mix, and
optionally verifies it against Keras on a dataset and times it on this host.
Its arguments are declared in :mod:`bnas_tf.pipeline.commands`, with every command's, so ``--help`` needs no
TensorFlow.
"""

from __future__ import annotations

from bnas_tf import arguments
from bnas_tf import data as data_lib
from bnas_tf.convert.benchmarking import benchmark
from bnas_tf.convert.export import to_tflite
from bnas_tf.convert.inspection import inspect
from bnas_tf.convert.loading import load_model
from bnas_tf.convert.verification import check_labels, verify
from bnas_tf.native_logs import converter_output_hidden


def _verification_data(name: str, model, data_dir, *, embedding: bool = False):
    """The test split of dataset ``name`` at the model's input size, refused before anything is converted when its
    channels (or, for a classifier, its classes) are not the model's."""
    height, width, channels = (int(d) for d in model.inputs[0].shape[1:])
    bundle = data_lib.load(name, image_size=(height, width), data_dir=data_dir, batch_size=64)
    if tuple(bundle.input_shape)[-1] != channels:
        raise ValueError(
            f"{name} has {bundle.input_shape[-1]}-channel images but the model takes {channels} channels; "
            "verify on a dataset like the one the model was trained on"
        )
    if not embedding:
        check_labels(int(model.outputs[0].shape[-1]), None, bundle.num_classes)
    return bundle.test, bundle.num_classes


def _kilobytes(size: int) -> str:
    return f"{size / 1024:.1f} KB" if size < 1024**2 else f"{size / 1024**2:.2f} MB"


def _ops_line(ops: dict) -> str:
    return ", ".join(f"{count} {name}" for name, count in ops.items())


def _check_options(args) -> None:
    """Refuse bad numbers before anything is loaded, converted or written."""
    arguments.count("num_threads", args.threads)
    if args.verify_on:
        arguments.count("--max-samples", args.max_samples)
        arguments.number("--min-agreement", args.min_agreement)  # finite; above 1 makes any check fail (exit 1)
        arguments.number("--min-cosine", args.min_cosine)
    if args.benchmark:
        arguments.count("--runs", args.runs)


def run(args) -> int:
    _check_options(args)
    model = load_model(args.model)
    data, num_classes = (  # fail before converting
        _verification_data(args.verify_on, model, args.data_dir, embedding=args.embedding)
        if args.verify_on
        else (None, None)
    )
    with converter_output_hidden():
        to_tflite(model, args.output, target=args.target, weights=args.weights)
    info = inspect(args.output, model=model)
    print(
        f"wrote {args.output}: {_kilobytes(info['size_bytes'])} ({info['size_bytes']} bytes), "
        f"{info['size_over_bound']:.2f}x the bit-level bound of the weights ({_kilobytes(info['bound_bytes'])}: "
        f"{info['binary_params']} binary + {info['float_params']} float parameters)"
    )
    print(f"ops: {_ops_line(info['ops'])}")
    if info["binary_conv_layers"] == 0 and args.weights == "float":
        print(
            "note: no binary kernels: only convolutions with binary inputs and weights (W1/A1) become LceBconv2d; "
            "W1/A32 nets run as float ops and keep float size (try --weights int8)"
        )
    elif info["binary_kernel_ops"] < info["binary_conv_layers"]:
        print(
            f"note: {info['binary_conv_layers'] - info['binary_kernel_ops']} of {info['binary_conv_layers']} binary "
            "convs stayed float CONV_2D (LCE does this for dilated convs sharing an input with an identical one)"
        )
    status = 0
    if args.verify_on and args.embedding:
        result = verify(
            model, args.output, data, num_threads=args.threads, max_samples=args.max_samples, mode="embedding"
        )
        print(
            f"verify on {args.verify_on} ({result['num_samples']} samples): embedding cosine similarity min "
            f"{result['min_cosine']:.6f}, mean {result['mean_cosine']:.6f}, max |diff| {result['max_abs_diff']:.3g}"
        )
        if result["min_cosine"] < args.min_cosine:
            print(
                f"cosine below {args.min_cosine}: the .tflite embeddings do not match Keras closely enough "
                "(verify a trained network: untrained ones have binary outputs at exactly 0 that flip)"
            )
            status = 1
    elif args.verify_on:
        result = verify(
            model, args.output, data, num_threads=args.threads, max_samples=args.max_samples, num_classes=num_classes
        )
        line = (
            f"verify on {args.verify_on} ({result['num_samples']} samples): top-1 agreement "
            f"{result['top1_agreement']:.2%}, max |logit diff| {result['max_abs_diff']:.3g}, "
            f"mean {result['mean_abs_diff']:.3g}"
        )
        if "keras_accuracy" in result:
            line += f"; accuracy Keras {result['keras_accuracy']:.2%}, tflite {result['tflite_accuracy']:.2%}"
        print(line)
        if result["top1_agreement"] < args.min_agreement:
            print(
                f"agreement below {args.min_agreement:.2%}: the .tflite does not match Keras closely enough "
                "(on an untrained network, near-equal logits and binary outputs at exactly 0 flip easily: "
                "verify a trained one)"
            )
            status = 1
    if args.benchmark:
        with converter_output_hidden():  # converts the float reference
            timing = benchmark(args.output, num_threads=args.threads, runs=args.runs, model=model)
        kernels = "optimised ARM kernels" if timing["optimised_kernels"] else "reference kernels: not ARM speed"
        print(
            f"latency on {timing['machine']} ({kernels}), {timing['num_threads']} thread(s), {timing['runs']} runs: "
            f"{timing['median_ms']:.2f} ms median, {timing['p90_ms']:.2f} ms p90; float tflite "
            f"{timing['float_median_ms']:.2f} ms median, {timing['float_p90_ms']:.2f} ms p90 "
            f"({_kilobytes(timing['float_size_bytes'])})"
        )
    return status
