"""The draw certificate (抽取证书): the few lines a regulator signs and a citizen checks —
seed, commitment, algorithm, counts — as markdown, from the published manifest."""

from __future__ import annotations

from typing import Any

from jointdraw.transforms.fusion_figures import figure_rows


def draw_certificate(manifest: dict[str, Any], seal: str) -> str:
    seed, commit, algo, acc = manifest["seed"], manifest["commitment"], manifest["algorithm"], manifest["accounting"]
    fuse = acc["fuse"]
    lines = [
        f"# 抽取证书 draw certificate — {manifest['plan_id']}",
        "",
        "| | |",
        "|---|---|",
        f"| 运行 run | `{manifest['run_id']}` |",
        f"| 承诺时间 committed | {manifest['timeline'].get('committed_at')} |",
        f"| 承诺值 commitment | `{commit['commitment']}` |",
        f"| 随机种子 seed ({seed['origin']}) | `{seed['value']}` |",
        *([f"| 公开号码 sources | {' / '.join(seed['sources'])} |"] if seed.get("sources") else []),
        f"| 种子使用 seed used | {manifest['timeline'].get('seed_used_at')} |",
        f"| 算法 algorithm | {algo['draw']} (jointdraw {algo['jointdraw']}, {algo['commitment']}) |",
        f"| 符合条件 eligible pairs | {acc['draw']['eligible_pairs']:,} in {acc['draw']['strata']:,} strata |",
        *[f"| {row['figure']} | {row['value']} |" for row in figure_rows(fuse)],
        f"| 已派员 staffed | {acc['assign']['assigned']:,} of {acc['assign']['joint_tasks']:,} joint tasks |",
        f"| 封存值 seal | `{seal}` |",
        "",
        f"Anyone can recompute the draw from the bundle's public and audit parts: "
        f"`jointdraw verify published/{manifest['plan_id']} --seal {seal}`.",
    ]
    return "\n".join(lines) + "\n"
