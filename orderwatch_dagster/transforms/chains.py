"""Amend chains: the links a modify (cancel-and-replace) leaves between an order and its
replacement, resolved to each chain's root order. The lifecycles, the alerts, the daily stats
and the fills check all count logical orders by these chains.
"""

from __future__ import annotations

import polars as pl

from orderwatch_dagster.transforms.common import ORDER_KEY

MAX_JUMPS = 64
"""Pointer-jumping rounds before giving up: each round doubles the distance a pointer covers, so
64 rounds resolve any chain; links only point to larger oids, so chains cannot loop."""


def _filled_or_rejected(final_status: pl.Expr) -> pl.Expr:
    """``outcome_expr(final_status)`` is ``filled`` or ``rejected`` (without building the string)."""
    return (final_status == "filled") | (final_status == "rejected") | final_status.str.ends_with("Rejected")


def replacement_links(events: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """The accepted replacement links ``(ethAddress, old, new)`` among ``events`` (``ethAddress``
    Categorical).

    A modify is a cancel-and-replace: the replacement's ``new`` event carries ``replacesOid`` and
    the replaced order's ``closed`` event ``replacedByOid``. Candidates are the union of both.
    A link is ignored when ``new <= old`` (oids grow, so it cannot be a replacement, and chains
    cannot loop) or when the old order closed ``filled`` or rejected (it cannot have been
    replaced: an inferred link can be wrong; an ``unknown`` status keeps the link). Should links
    conflict, each new order keeps its largest old one, then each old order its smallest new one,
    so that every order has at most one predecessor and one successor: chains are paths.
    """
    action = pl.col("action")
    not_replaced = (action == "closed") & _filled_or_rejected(pl.col("finalStatus"))
    linked = (
        events.lazy()
        .filter(pl.col("replacesOid").is_not_null() | pl.col("replacedByOid").is_not_null())
        .select(
            pl.col("ethAddress").cast(pl.Categorical),
            "oid",
            "action",
            "replacesOid",
            "replacedByOid",
            notReplaced_=not_replaced,
        )
        .collect()
    )
    # A replaced order's close normally carries the link (and its status) itself; the closes of
    # old orders linked from the new side only are looked up.
    one_sided = (
        linked.filter(pl.col("replacesOid").is_not_null())
        .select("ethAddress", oid=pl.col("replacesOid"))
        .join(linked.filter(action == "closed"), on=ORDER_KEY, how="anti")
    )
    rows = linked
    if not one_sided.is_empty():
        closes = (
            events.lazy()
            .filter(not_replaced & pl.col("oid").is_in(one_sided["oid"].implode()))
            .select(pl.col("ethAddress").cast(pl.Categorical), "oid", notReplaced_=pl.lit(True))
            .collect()
        )
        rows = pl.concat([linked, closes], how="diagonal")
    candidates = pl.concat(
        [
            rows.filter((action == "new") & pl.col("replacesOid").is_not_null()).select(
                "ethAddress", old=pl.col("replacesOid"), new=pl.col("oid")
            ),
            rows.filter((action == "closed") & pl.col("replacedByOid").is_not_null()).select(
                "ethAddress", old=pl.col("oid"), new=pl.col("replacedByOid")
            ),
        ]
    ).filter(pl.col("new") > pl.col("old"))
    ruled_out = rows.filter("notReplaced_").select("ethAddress", old=pl.col("oid"))
    return (
        candidates.join(ruled_out, on=["ethAddress", "old"], how="anti")
        .group_by("ethAddress", "new")
        .agg(pl.col("old").max())
        .group_by("ethAddress", "old")
        .agg(pl.col("new").min())
        .select("ethAddress", "old", "new")
    )


def chain_members(links: pl.DataFrame) -> pl.DataFrame:
    """Every order on an amend chain: ``ethAddress, oid, prevOid`` (null for the root), ``rootOid``
    (``ethAddress`` typed as in ``links``, which must be :func:`replacement_links`' paths).

    Orders on no chain are not listed: their root is themselves. Roots are found by pointer
    jumping over the links' row numbers: link i points at the link that placed its old order
    (else at itself), then ``pointer = pointer[pointer]`` (one gather) until nothing changes, so a
    chain of n orders takes about log2(n) rounds, never a per-row Python loop.
    """
    links = links.with_row_index("i")
    up = links.join(
        links.select("ethAddress", old=pl.col("new"), j=pl.col("i")), on=["ethAddress", "old"], how="left"
    ).sort("i")
    pointer = up.select(pl.coalesce("j", "i")).to_series()
    for _ in range(MAX_JUMPS):
        jumped = pointer.gather(pointer)
        if jumped.equals(pointer):
            break
        pointer = jumped
    else:  # pragma: no cover - impossible while links point to larger oids
        raise RuntimeError("amend chains did not resolve")
    root = up["old"].gather(pointer)
    replaced = up.select("ethAddress", oid=pl.col("new"), prevOid=pl.col("old"), rootOid=root)
    roots = up.filter(pl.col("j").is_null()).select(
        "ethAddress", oid=pl.col("old"), prevOid=pl.lit(None, pl.Int64), rootOid=pl.col("old")
    )
    return pl.concat([roots, replaced])
