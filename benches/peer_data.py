"""What the Python peers share: rows of ../shared/data, read the way benches/common/mod.rs reads them."""
import json, os, time


def rows(data, rel, n):
    """n rows of a JSON Lines file, every k-th row, so that the sample spans the file."""
    lines = [l for l in open(os.path.join(data, rel)) if l.strip()]
    step = max(len(lines) // n, 1)
    return [json.loads(l) for l in lines[::step][:n]]


def text(v):
    """A text field: a string, or a list of strings joined with spaces."""
    return " ".join(v) if isinstance(v, list) else v


def passes(f, runs):
    """The wall times of `runs` calls of f, in seconds (callers warm up first and take the median)."""
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return times
