"""The sweep stage's selection, tested on its own: candidates read on paraphrases level by level, with a fake reading (no model)."""

from __future__ import annotations

from steering.pipeline.runner import PipelineSettings


class _Advance:
    """A stage's progress as ``Context.tick`` gives it: units done, and the plan's total."""

    def __init__(self, total):
        self.done, self.total = 0.0, total

    def __call__(self, n=1):
        self.done += n

    def replan(self, delta):
        self.total += delta


def _fake_reading(monkeypatch, share, quality, n=30):
    """The sweep module with ``_candidates`` replaced: candidate ``(method, margin, schedule)``
    opens the fence on the first ``share`` of each part of the paraphrases it is read on (``share``
    a number, or ``(screened share, share on the rest)``); the levels read and their rows are kept."""
    from types import SimpleNamespace

    from steering.pipeline.stages import sweep  # the module, by its name
    reads = []

    def fake(ctx, reading, makers, tried, rows, advance):
        reads.append((list(tried), list(rows)))
        out = []
        for method, margin, schedule, *_ in tried:
            value = share[method, margin, schedule]
            value = value if isinstance(value, float) else value[0] if rows[0] == 0 else value[1]
            opened = [i < round(value * len(rows)) for i in range(len(rows))]
            out.append({"tried": (method, margin, schedule, ()), "method": method, "opened": opened,
                        "logprobs": [quality[schedule]] * sum(opened)})
            advance(len(rows))
        return out

    monkeypatch.setattr(sweep, "_candidates", fake)
    reading = {"prompts": [f"p{i}" for i in range(n)], "reference": -0.9}
    return sweep, reads, reading, SimpleNamespace


def test_selection_tries_every_schedule_at_the_largest_margin_then_smaller_margins_of_the_finalists_level_by_level(monkeypatch):
    """Share by (margin, schedule); quality by schedule. 'window' never comes near the best share,
    so its smaller margins are not tried; 'all' keeps its share down to 1x and wins there. Each
    level's candidates, of every method, are decoded together (on the screened third, then the rest)."""
    share = {("m", 2.0, "all"): 0.9, ("m", 1.5, "all"): 0.9, ("m", 1.0, "all"): 0.9, ("m", 2.0, "fence"): 0.9,
             ("m", 1.5, "fence"): 0.6, ("m", 2.0, "window"): 0.3}
    share.update({("o", *key[1:]): value for key, value in share.items()})  # a second method, as the first
    quality = {"all": -1.0, "fence": -1.01, "window": -0.5}
    sweep, reads, reading, ns = _fake_reading(monkeypatch, share, quality)
    ctx = ns(settings=PipelineSettings(sweep_margins=(1.0, 1.5, 2.0), sweep_schedules=("all", "window", "fence"),
                                       select_screen_tolerance=1.0))  # none left out: the levels alone
    steps = _Advance(30 * sweep._planned_from(ctx.settings, 2, 0))
    assert steps.total == 30 * (2 * 3 + 2 * 2)  # planned: every schedule, then one per method and smaller margin
    tried = sweep._select(ctx, reading, {"m": None, "o": None}, steps)
    levels = [[(margin, schedule) for method, margin, schedule, _ in t if method == "m"] for t, rows in reads[::2]]
    assert levels == [[(2.0, "all"), (2.0, "window"), (2.0, "fence")], [(1.5, "all"), (1.5, "fence")], [(1.0, "all")]]
    assert all({m for m, *_ in t} == {"m", "o"} for t, _ in reads)  # both methods' candidates in one call
    assert [rows for _, rows in reads[:2]] == [list(range(0, 30, 3)), [i for i in range(30) if i % 3]]
    assert steps.done == steps.total == 2 * 6 * 30  # the plan corrected to the 6 candidates each method tried
    for candidates in tried.values():
        assert (sweep._choice(candidates)["margin"], sweep._choice(candidates)["schedule"]) == (1.0, "all")


def test_selection_reads_the_rest_of_the_paraphrases_only_for_candidates_near_the_best_screened_share(monkeypatch):
    """Successive halving: 'window' is 0.3 below the best on the screened third and is left out
    there, with its screened share; 'fence', 0.1 below on the third, is read on the rest, where it
    ties 'all' and wins on quality. What is left out can never be chosen."""
    share = {("m", 2.0, "all"): 0.9, ("m", 2.0, "fence"): (0.8, 0.95), ("m", 2.0, "window"): (0.6, 1.0)}
    quality = {"all": -1.0, "fence": -0.5, "window": -0.1}
    sweep, reads, reading, ns = _fake_reading(monkeypatch, share, quality)
    ctx = ns(settings=PipelineSettings(sweep_margins=(2.0,), sweep_schedules=("all", "window", "fence")))
    steps = _Advance(30 * sweep._planned_from(ctx.settings, 1, 0))
    candidates = sweep._select(ctx, reading, {"m": None}, steps, {"m": {"limit": 2.0}})["m"]  # no larger margin
    assert [t for t, _ in reads] == [[("m", 2.0, "all", ()), ("m", 2.0, "window", ()), ("m", 2.0, "fence", ())],
                                     [("m", 2.0, "all", ()), ("m", 2.0, "fence", ())]]
    by = {c["schedule"]: c for c in candidates}
    assert by["window"]["screened"] == 10 and by["window"]["success"] == 0.6
    assert by["fence"]["screened"] == 0 and by["fence"]["success"] == (8 + 19) / 30
    assert sweep._choice(candidates)["schedule"] == "fence"
    assert steps.done == steps.total == 3 * 30 - 20  # the one left out is not read on the other 20 paraphrases
    assert "1 left out after a first share" in sweep._why(sweep._choice(candidates), candidates)


def test_selection_tries_each_option_and_doubles_the_margin_while_the_share_rises_within_quality(monkeypatch):
    """Issue 30: G-ACT's share was still rising at 2x, the largest margin tried, and its "off"
    class was never a candidate. Every option is tried at the largest margin; past it the margin
    doubles while the share rises: 4x rises (tried, eligible), 8x rises further but its code falls
    more than ``select_quality_drop`` below the asked answers' (-0.9): kept in the table, never
    chosen, and the search stops there although 16x is within the limit."""
    share = {("m", 2.0, "all"): 0.3, ("m", 1.5, "all"): 0.1, ("m", 1.0, "all"): 0.0, ("m", 4.0, "all"): 0.6,
             ("m", 8.0, "all"): 0.9, ("m", 16.0, "all"): 1.0}
    options = [(("off_class", "weight"),), (("off_class", "gate"),)]
    sweep, reads, reading, ns = _fake_reading(monkeypatch, share, {})

    def by_margin(ctx, reading, makers, tried, rows, advance):  # quality falls with the margin; "gate" never opens
        reads.append((list(tried), list(rows)))
        out = []
        for method, margin, schedule, options_ in tried:
            value = 0.0 if dict(options_)["off_class"] == "gate" else share[method, margin, schedule]
            opened = [i < round(value * len(rows)) for i in range(len(rows))]
            out.append({"tried": (method, margin, schedule, options_), "method": method, "opened": opened,
                        "logprobs": [-0.9 - 0.05 * margin] * sum(opened)})
            advance(len(rows))
        return out

    monkeypatch.setattr(sweep, "_candidates", by_margin)
    ctx = ns(settings=PipelineSettings(sweep_margins=(1.0, 1.5, 2.0), sweep_schedules=("all",),
                                       select_screen_tolerance=1.0, select_quality_drop=0.35))
    ways = {"m": {"options": options, "limit": 20.0}}
    steps = _Advance(30 * sweep._planned_from(ctx.settings, 1, 0, ways))
    candidates = sweep._select(ctx, reading, {"m": None}, steps, ways)["m"]
    first = [t for t, rows in reads[::2]][0]
    assert first == [("m", 2.0, "all", options[0]), ("m", 2.0, "all", options[1])]  # both off classes
    tried = [(c["margin"], c["options"]["off_class"]) for c in candidates]
    assert (4.0, "weight") in tried and (8.0, "weight") in tried and all(m < 16 for m, _ in tried)
    assert all(o == "weight" for m, o in tried if m > 2)  # larger margins only for the finalists' way
    by = {(c["margin"], c["options"]["off_class"]): c for c in candidates}
    assert by[4.0, "weight"]["eligible"] and not by[8.0, "weight"]["eligible"]  # -1.3 < -0.9 - 0.35
    best = sweep._choice(candidates)
    assert (best["margin"], best["options"]) == (4.0, {"off_class": "weight"})
    assert "1 past the margins given" in sweep._why(best, candidates)
    assert steps.done == steps.total


def test_a_candidate_until_the_fence_decodes_in_the_chunk_of_its_every_token_twin():
    """Issue 29: such a candidate forks from its twin at the fence line (``generate_each``), so
    it is placed with it and does not count against a chunk's size: its rows join late."""
    from steering.pipeline.stages.sweep import _chunks

    tried = [(m, 2.0, s, ()) for m in ("gact", "mean_diff") for s in ("all", "window", "fence", "gated")]
    assert _chunks(tried, 2) == [[("gact", 2.0, "all", ()), ("gact", 2.0, "fence", ()), ("gact", 2.0, "window", ())],
                                 [("gact", 2.0, "gated", ()), ("mean_diff", 2.0, "all", ()), ("mean_diff", 2.0, "fence", ())],
                                 [("mean_diff", 2.0, "window", ()), ("mean_diff", 2.0, "gated", ())]]
    gate = (("off_class", "gate"),)
    assert _chunks([("gact", 2.0, "all", gate), ("gact", 2.0, "fence", gate), ("gact", 2.0, "fence", ())], 1) == [
        [("gact", 2.0, "all", gate), ("gact", 2.0, "fence", gate)], [("gact", 2.0, "fence", ())]]  # twins share options
    alone = [("gact", 1.5, "fence", ()), ("mean_diff", 2.0, "fence", ()), ("mean_diff", 1.5, "all", ())]  # no twin
    assert _chunks(alone, 2) == [alone[:2], alone[2:]]
    assert sorted(c for chunk in _chunks(tried, 3) for c in chunk) == sorted(tried)
